// Whether a kernel may read and write a range of bytes, asked of the driver before the copy kernel touches
// memory that a caller named: a kernel's bad access kills its context (the caller's too), where a refused
// cuMemcpyAsync only returns an error.
#pragma once

#include <cstdint>
#include <map>

#include "driver.hpp"

namespace wb::cuda {

// For one batch, in the context current at construction (of GPU ordinal): a range is reachable when it lies
// in one mapping of device memory (not managed) on that GPU, which kernels of the context address as it is
// and may read and write. Each mapping found so is remembered, so that tensors packed in one allocation cost
// one query of the driver.
class KernelReach {
 public:
  KernelReach(const Driver *d, int ordinal) : d_(d), ordinal_(ordinal) {}
  bool operator()(const void *p, uint64_t bytes);

 private:
  bool known(uintptr_t begin, uintptr_t end) const;

  const Driver *d_;
  int ordinal_;
  std::map<uintptr_t, uintptr_t> mappings_;  // begin -> end of the mappings found reachable
};

}  // namespace wb::cuda
