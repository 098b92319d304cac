// wb_plan, the handle of wb_plan_create (plan.cpp): destinations resolved into copies, run every version.
#pragma once

#include "weightbus/weightbus.h"

namespace wb {

// The topic handle the plan was made on (its arms lease versions of it: armed.cpp).
wb_topic *plan_topic(const wb_plan *plan);

}  // namespace wb
