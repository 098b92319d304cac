// The copy kernels (copy_kernel.cu) in each CUDA context that copy-into or a plan runs in: loaded on first use,
// kept with the client's CUDA state, unloaded at detach. Copy-into hands it the copies; it takes the small
// same-GPU ones into a few launches on the caller's stream and leaves the rest to one cuMemcpyAsync each. Plans
// launch the plan kernel themselves (plan_run.cpp), and conversions the conversion kernels (convert_run.cpp), a
// module of its own loaded on the first conversion in a context; both take their functions from here.
#pragma once

#include <cuda.h>

#include <array>
#include <mutex>
#include <vector>

#include "copy_plan.hpp"
#include "driver.hpp"

namespace wb::cuda {

// The kernels, embedded at build time, each module apart (copy_kernel.cu, convert_kernel.cu); empty when the
// library was built without nvcc. The copy kernels as PTX (the driver compiles them in a fraction of a second);
// the conversion kernels as fat binaries, machine code for the commonest GPUs beside PTX for the others (the
// driver would take seconds to compile their PTX).
extern const unsigned char kCopyKernelPtx[];
extern const unsigned char kConvertKernelImage[];     // PTX for compute capability 7.5, code for 8.0
extern const unsigned char kConvertFp8KernelImage[];  // with FP8 conversion instructions: PTX for 8.9, code for 9.0

// The conversion kernels' image for the current context's GPU: kConvertFp8KernelImage where its compute
// capability has FP8 conversion instructions, else kConvertKernelImage.
const unsigned char *convert_kernel_image(const Driver *d);

// Whether the module's kernels can run in the current context: WB_OK, or WB_E_NO_CUDA saying why (the library has
// no PTX built in, the driver predates CUDA 12.1, the GPU is older than the PTX). Whether the driver compiles
// the PTX shows only when it loads it.
int kernels_supported(const Driver *d);

// The plan kernel at each capacity of sources, for launches that read that many (copy_kernel_params.h).
struct PlanKernel {
  CUfunction full = nullptr;  // wb_copy_plan, WB_PLAN_MAX_SOURCES; nullptr: the plan kernels are not usable
  std::array<CUfunction, WB_PLAN_SMALL_KERNELS> small{};  // WB_PLAN_SMALL_CAPACITIES; nullptr: not loaded
  CUfunction guard = nullptr;  // wb_arm_guard, for armed runs; nullptr: not loaded (runs are not armed)

  // The smallest that holds `sources` addresses, and the bytes of its parameters.
  CUfunction holding(uint32_t sources, size_t *param_bytes) const;
};

class CopyKernel {
 public:
  CopyKernel() = default;
  CopyKernel(const CopyKernel &) = delete;
  CopyKernel &operator=(const CopyKernel &) = delete;
  ~CopyKernel();

  // Whether the kernel runs in context: not where the library has no PTX built in, the driver predates CUDA
  // 12.1, the GPU is older than the PTX, or the JIT compilation or a launch failed (then for good).
  bool usable(CUcontext context);

  // Launches copies of context (current) on stream as plan_copies plans them, and leaves the rest in
  // *per_copy; where the kernel is not usable, every GPU copy. A launch the driver refuses runs as one
  // cuMemcpyAsync per copy instead, and the kernel is not used in context again.
  int run(CUcontext context, const std::vector<Copy> &copies, CUstream stream, std::vector<Copy> *per_copy);

  // The plan kernels (wb_copy_plan and its smaller ones) in context, where usable as for usable().
  PlanKernel plan_kernel(CUcontext context);

  // After the driver refused a launch of the plan kernel in context: it is not used there again.
  void plan_refused(CUcontext context);

  // The conversion kernel in context (wb_convert_plan for a plan's launches, else wb_convert_batch), their
  // module loaded on the first call in context; nullptr where the driver refuses it or the GPU kernels cannot run.
  CUfunction convert_function(CUcontext context, bool plan);

 private:
  struct Loaded {
    CUcontext context = nullptr;
    CUmodule module = nullptr;
    CUfunction function = nullptr;  // nullptr: not usable in this context
    PlanKernel plan;                // the plan kernels; plan.full nullptr: not usable
    CUmodule convert_module = nullptr;   // the conversion kernels' module, loaded on first use
    CUfunction convert_plan = nullptr;   // the conversion kernels; nullptr: not usable
    CUfunction convert_batch = nullptr;
    bool convert_tried = false;          // whether the conversion kernels' module was loaded (or refused)
    int ordinal = -1;               // the context's GPU
  };
  Loaded loaded(CUcontext context);
  // One launch on stream; when the driver refuses it, its copies one cuMemcpyAsync each, and the kernel is
  // marked unusable in context.
  int launch(CUcontext context, CUfunction function, const KernelLaunch &k, CUstream stream);

  std::mutex mutex_;
  std::vector<Loaded> loaded_;
};

}  // namespace wb::cuda
