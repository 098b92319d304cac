// wb_armed, the handle of wb_plan_arm (armed.cpp): a plan's run of a version leased before it is published.
#pragma once

#include "weightbus/weightbus.h"

namespace wb {

// Withdraws and frees every arm of the topic handle (wb_detach's), allocating nothing.
void withdraw_arms(wb_topic *topic);

}  // namespace wb
