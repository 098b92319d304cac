#include "kernel_reach.hpp"

namespace wb::cuda {

bool KernelReach::known(uintptr_t begin, uintptr_t end) const {
  auto it = mappings_.upper_bound(begin);
  return it != mappings_.begin() && end <= (--it)->second;
}

bool KernelReach::operator()(const void *p, uint64_t bytes) {
  const uintptr_t begin = reinterpret_cast<uintptr_t>(p), end = begin + bytes;
  if (end < begin) return false;
  if (known(begin, end)) return true;
  // Each value is written in the attribute's own width (4 bytes, or 8); zeroed, the low bytes read right on a
  // little-endian host. An address the driver does not know gets zeros, and CUDA_SUCCESS.
  CUpointer_attribute attributes[] = {CU_POINTER_ATTRIBUTE_MEMORY_TYPE,  CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL,
                                      CU_POINTER_ATTRIBUTE_IS_MANAGED,   CU_POINTER_ATTRIBUTE_DEVICE_POINTER,
                                      CU_POINTER_ATTRIBUTE_ACCESS_FLAGS, CU_POINTER_ATTRIBUTE_MAPPING_BASE_ADDR,
                                      CU_POINTER_ATTRIBUTE_MAPPING_SIZE};
  constexpr unsigned kCount = sizeof(attributes) / sizeof(attributes[0]);
  uint64_t values[kCount] = {};
  void *data[kCount];
  for (unsigned i = 0; i < kCount; ++i) data[i] = &values[i];
  if (d_->cuPointerGetAttributes(kCount, attributes, data, CUdeviceptr(begin)) != CUDA_SUCCESS) return false;
  const uint64_t type = values[0], ordinal = values[1], managed = values[2], device_pointer = values[3],
                 access = values[4], base = values[5], size = values[6];
  if (type != CU_MEMORYTYPE_DEVICE || ordinal != uint64_t(ordinal_) || managed != 0 || device_pointer != begin ||
      access != CU_POINTER_ATTRIBUTE_ACCESS_FLAG_READWRITE || begin < base || end > base + size) {
    return false;
  }
  mappings_[base] = base + size;
  return true;
}

}  // namespace wb::cuda
