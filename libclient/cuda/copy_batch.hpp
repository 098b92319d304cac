// The copy kernel (copy_kernel.cu) in each CUDA context that copy-into runs in: loaded on first use, kept with
// the client's CUDA state, unloaded at detach. Copy-into hands it the copies; it takes the small same-GPU ones
// into a few launches on the caller's stream and leaves the rest to one cuMemcpyAsync each.
#pragma once

#include <cuda.h>

#include <mutex>
#include <vector>

#include "copy_plan.hpp"

namespace wb::cuda {

// The kernel's PTX, embedded at build time; empty when the library was built without nvcc.
extern const unsigned char kCopyKernelPtx[];

class CopyKernel {
 public:
  CopyKernel() = default;
  CopyKernel(const CopyKernel &) = delete;
  CopyKernel &operator=(const CopyKernel &) = delete;
  ~CopyKernel();

  // Plans copies for context (current): see plan_copies. Where the kernel cannot run in context (no PTX built
  // in, a driver before CUDA 12.1, a GPU older than the PTX, a failed JIT compilation), for good, every copy
  // is left per copy.
  CopyPlan plan(CUcontext context, const std::vector<Copy> &copies);

  // Enqueues the plan's launches on stream, of context (current). A launch the driver refuses runs as one
  // cuMemcpyAsync per copy instead, and the kernel is not used in context again.
  int launch(CUcontext context, const CopyPlan &plan, CUstream stream);

 private:
  struct Loaded {
    CUcontext context = nullptr;
    CUmodule module = nullptr;
    CUfunction function = nullptr;  // nullptr: not usable in this context
    int ordinal = -1;               // the context's GPU
  };
  Loaded loaded(CUcontext context);

  std::mutex mutex_;
  std::vector<Loaded> loaded_;
};

}  // namespace wb::cuda
