// A caller's wb_tensor_spec array: shared by wb_tensor_alloc (tensor.cpp) and the CUDA allocation and
// registration (cuda/alloc.cpp, cuda/register.cpp).
#pragma once

#include <cstdint>

#include "weightbus/weightbus.h"

namespace wb {

// specs[i] of an array whose elements are specs[0].struct_size bytes apart, and its checks (name, dtype,
// shape).
const wb_tensor_spec &spec_at(const wb_tensor_spec *specs, uint32_t i);
int check_spec(const wb_tensor_spec &spec);

}  // namespace wb
