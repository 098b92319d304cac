// Which copies of a copy-into the copy kernel takes, and the launches that carry them. Pure logic, without the
// driver, so that it is tested without a GPU (tests/cuda/test-copy-plan.cpp).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "copy_kernel_params.h"
#include "hooks.hpp"  // Copy

namespace wb::cuda {

// Copies of this size and up keep one cuMemcpyAsync each, on the lanes. From here a copy's GPU time (16 MiB
// read and written: ~10 us at 3 TB/s) exceeds the host's cost of launching it (~6.5 us measured under gVisor),
// so launches hide behind the copies and each runs at the driver's full copy speed; below it the launches are
// the cost, which one kernel launch for all of them removes.
constexpr uint64_t kKernelMaxBytes = uint64_t(16) << 20;
static_assert(kKernelMaxBytes <= UINT32_MAX, "wb_copy_desc.bytes is 32-bit");
static_assert(uint64_t(WB_COPY_MAX_COPIES) * (kKernelMaxBytes / WB_COPY_CHUNK_BYTES) < (uint64_t(1) << 31),
              "a launch's chunks fit the grid's x dimension");
static_assert(sizeof(wb_copy_params) <= 32764, "the kernel's parameters fit what CUDA 12.1+ allows");

struct KernelLaunch {
  wb_copy_params params;
  uint32_t blocks = 0;  // one per chunk
};

// Copies in the first launch. Each launch waits for the host to check its copies' memory (a driver query per
// mapping, ~0.1 us, with 2,000 mappings for 1,000 tensors of PyTorch's allocator on both sides): a small first
// launch starts the GPU early, and each next one takes twice as many (up to WB_COPY_MAX_COPIES), so that the
// host checks the later copies while the GPU copies the earlier ones, at a few launches in all.
constexpr uint32_t kFirstLaunchCopies = 128;
static_assert(kFirstLaunchCopies <= WB_COPY_MAX_COPIES, "the first launch fits the parameters");

// Plans the GPU copies of `copies` (host-to-host ones are done already and left out, as are empty ones): those
// below kKernelMaxBytes for which reaches(copy) holds (a kernel on the stream may read src and write dst; asked
// of those only) go, in order, into launches handed to launch() as soon as each is full (the last when the
// copies end); the rest are left in *per_copy, in order. Stops at the first error of launch and returns it.
int plan_copies(const std::vector<Copy> &copies, const std::function<bool(const Copy &)> &reaches,
                const std::function<int(const KernelLaunch &)> &launch, std::vector<Copy> *per_copy);

}  // namespace wb::cuda
