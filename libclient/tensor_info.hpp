// A registry tensor as the public wb_tensor_info: what wb_topic_tensor, wb_update_tensor and wb_snapshot_tensor
// describe.
#pragma once

#include <cstdint>

#include "layout.hpp"
#include "weightbus/weightbus.h"

namespace wb {

// Fills the layout part of info (everything but data) for the tensor in registry slot tensor_slot, at position
// `position` of its topic.
void describe_tensor(const shm::Segment &seg, uint32_t tensor_slot, uint32_t position, wb_tensor_info *info);

}  // namespace wb
