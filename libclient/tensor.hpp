// What tensor.cpp offers the rest of the library: a registry tensor as the public wb_tensor_info, and the checks
// of a caller's wb_tensor_spec array, shared by wb_tensor_alloc and the CUDA allocation and registration.
#pragma once

#include <cstdint>

#include "layout.hpp"
#include "weightbus/weightbus.h"

namespace wb {

// Fills the layout part of info (everything but data) for the tensor in registry slot tensor_slot, at position
// `position` of its topic.
void describe_tensor(const shm::Segment &seg, uint32_t tensor_slot, uint32_t position, wb_tensor_info *info);

// specs[i] of an array whose elements are specs[0].struct_size bytes apart, and its checks (name, dtype,
// shape).
const wb_tensor_spec &spec_at(const wb_tensor_spec *specs, uint32_t i);
int check_spec(const wb_tensor_spec &spec);

}  // namespace wb
