#include "copy_batch.hpp"

#include <cstddef>
#include <string>

#include "copy.hpp"
#include "device.hpp"
#include "driver.hpp"
#include "error.hpp"
#include "kernel_reach.hpp"
#include "weightbus/weightbus.h"

namespace wb::cuda {

namespace {

// Kernel parameters past 4 KiB need a CUDA 12.1 driver (and compute capability 7.0, below the PTX's own).
constexpr int kMinDriverVersion = 12010;
constexpr uint32_t kSmallCapacities[] = {WB_PLAN_SMALL_CAPACITIES};

// Loads a module in the current context and looks up two of its functions; each stays nullptr when the driver
// refuses it.
void load_module(const Driver *d, const unsigned char *ptx, const char *first_name, const char *second_name,
                 CUmodule *module, CUfunction *first, CUfunction *second) {
  CUmodule m = nullptr;
  if (d->cuModuleLoadData(&m, ptx) != CUDA_SUCCESS) return;
  *module = m;
  CUfunction f = nullptr;
  if (d->cuModuleGetFunction(&f, m, first_name) == CUDA_SUCCESS) *first = f;
  if (d->cuModuleGetFunction(&f, m, second_name) == CUDA_SUCCESS) *second = f;
}

int copy_each(const Driver *d, const wb_copy_params &params, CUstream stream) {
  int rc = WB_OK;
  for (unsigned i = 0; rc == WB_OK && i < params.count; ++i) {
    const wb_copy_desc &c = params.copies[i];
    rc = memcpy_async(d, Copy{reinterpret_cast<const char *>(c.src), reinterpret_cast<char *>(c.dst), c.bytes}, stream);
  }
  return rc;
}

// The current context's GPU's compute capability, as major * 10 + minor.
int compute_capability(const Driver *d, int *cc) {
  CUdevice device;
  int major = 0, minor = 0, rc;
  if ((rc = check(d->cuCtxGetDevice(&device), "cuCtxGetDevice")) != WB_OK ||
      (rc = check(d->cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device),
                  "cuDeviceGetAttribute")) != WB_OK ||
      (rc = check(d->cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device),
                  "cuDeviceGetAttribute")) != WB_OK) {
    return rc;
  }
  *cc = major * 10 + minor;
  return WB_OK;
}

}  // namespace

const unsigned char *convert_kernel_image(const Driver *d) {
  int cc = 0;
#ifdef WB_CONVERT_FP8_MIN_CC
  if (compute_capability(d, &cc) == WB_OK && cc >= WB_CONVERT_FP8_MIN_CC) return kConvertFp8KernelImage;
#else
  (void)d, (void)cc;
#endif
  return kConvertKernelImage;
}

int kernels_supported(const Driver *d) {
  if (kCopyKernelPtx[0] == '\0') {
    return fail(WB_E_NO_CUDA, "this libweightbus was built without nvcc, so it has no GPU kernels (copy and conversion "
                "kernels); rebuild it where CUDA's nvcc is found (e.g. CUDA_HOME=/usr/local/cuda)");
  }
  int version = 0, cc = 0;
  int rc = check(d->cuDriverGetVersion(&version), "cuDriverGetVersion");
  if (rc != WB_OK) return rc;
  if (version < kMinDriverVersion) {
    return fail(WB_E_NO_CUDA, "the CUDA driver supports CUDA %d.%d; the GPU kernels' parameters need 12.1 or later",
                version / 1000, version % 1000 / 10);
  }
  if ((rc = compute_capability(d, &cc)) != WB_OK) return rc;
  if (cc < WB_COPY_KERNEL_MIN_CC) {
    return fail(WB_E_NO_CUDA, "the GPU has compute capability %d.%d; the GPU kernels are built for %d.%d and later",
                cc / 10, cc % 10, WB_COPY_KERNEL_MIN_CC / 10, WB_COPY_KERNEL_MIN_CC % 10);
  }
  return WB_OK;
}

CopyKernel::~CopyKernel() {
  const Driver *d = nullptr;
  if (driver(&d) != WB_OK) return;
  for (const Loaded &l : loaded_) {
    ContextGuard guard;
    if ((l.module == nullptr && l.convert_module == nullptr) || guard.push(l.context) != WB_OK) continue;
    if (l.module != nullptr) d->cuModuleUnload(l.module);
    if (l.convert_module != nullptr) d->cuModuleUnload(l.convert_module);
  }
}

CopyKernel::Loaded CopyKernel::loaded(CUcontext context) {
  std::lock_guard lock(mutex_);
  for (const Loaded &l : loaded_) {
    if (l.context == context) return l;
  }
  // The first use in context JIT-compiles the PTX (the driver caches the result on disk for later processes).
  loaded_.reserve(loaded_.size() + 1);  // a module loaded below is recorded without allocating
  Loaded l;
  l.context = context;
  const Driver *d = nullptr;
  if (driver(&d) == WB_OK && kernels_supported(d) == WB_OK && context_ordinal(context, &l.ordinal) == WB_OK) {
    load_module(d, kCopyKernelPtx, "wb_copy_batch", "wb_copy_plan", &l.module, &l.function, &l.plan.full);
    for (size_t i = 0; l.module != nullptr && i < l.plan.small.size(); ++i) {
      const std::string name = "wb_copy_plan_" + std::to_string(kSmallCapacities[i]);
      if (d->cuModuleGetFunction(&l.plan.small[i], l.module, name.c_str()) != CUDA_SUCCESS) l.plan.small[i] = nullptr;
    }
    if (l.module != nullptr && d->cuModuleGetFunction(&l.plan.guard, l.module, "wb_arm_guard") != CUDA_SUCCESS) {
      l.plan.guard = nullptr;
    }
  }
  loaded_.push_back(l);
  return l;
}

bool CopyKernel::usable(CUcontext context) { return loaded(context).function != nullptr; }

PlanKernel CopyKernel::plan_kernel(CUcontext context) { return loaded(context).plan; }

CUfunction PlanKernel::holding(uint32_t sources, size_t *param_bytes) const {
  for (size_t i = 0; i < small.size(); ++i) {
    if (small[i] != nullptr && sources <= kSmallCapacities[i]) {
      *param_bytes = offsetof(wb_plan_params, sources) + kSmallCapacities[i] * sizeof(unsigned long long);
      return small[i];
    }
  }
  *param_bytes = sizeof(wb_plan_params);
  return full;
}

CUfunction CopyKernel::convert_function(CUcontext context, bool plan) {
  loaded(context);
  std::lock_guard lock(mutex_);
  for (Loaded &l : loaded_) {
    if (l.context != context) continue;
    // The conversion kernels' module on the first conversion in context (the largest: where the GPU has no code
    // of its own in it, the driver compiles its PTX for seconds).
    const Driver *d = nullptr;
    if (!l.convert_tried && l.ordinal >= 0 && driver(&d) == WB_OK) {
      // context is current (convert_run.cpp): its GPU chooses the module
      load_module(d, convert_kernel_image(d), "wb_convert_plan", "wb_convert_batch", &l.convert_module,
                  &l.convert_plan, &l.convert_batch);
    }
    l.convert_tried = true;
    return plan ? l.convert_plan : l.convert_batch;
  }
  return nullptr;
}

void CopyKernel::plan_refused(CUcontext context) {
  std::lock_guard lock(mutex_);
  for (Loaded &l : loaded_) {
    if (l.context == context) l.plan = PlanKernel{};
  }
}

int CopyKernel::launch(CUcontext context, CUfunction function, const KernelLaunch &k, CUstream stream) {
  const Driver *d = nullptr;
  int rc = driver(&d);
  if (rc != WB_OK) return rc;
  void *args[] = {const_cast<wb_copy_params *>(&k.params)};
  if (d->cuLaunchKernel(function, k.blocks, 1, 1, WB_COPY_THREADS, 1, 1, 0, stream, args, nullptr) == CUDA_SUCCESS) {
    return WB_OK;
  }
  std::lock_guard lock(mutex_);
  for (Loaded &l : loaded_) {
    if (l.context == context) l.function = nullptr;
  }
  return copy_each(d, k.params, stream);
}

int CopyKernel::run(CUcontext context, const std::vector<Copy> &copies, CUstream stream, std::vector<Copy> *per_copy) {
  const Loaded l = loaded(context);
  const Driver *d = nullptr;
  if (l.function == nullptr || driver(&d) != WB_OK) {
    return plan_copies(copies, [](const Copy &) { return false; }, nullptr, per_copy);
  }
  KernelReach reach(d, l.ordinal);
  return plan_copies(
      copies, [&](const Copy &c) { return reach(c.src, c.bytes) && reach(c.dst, c.bytes); },
      [&](const KernelLaunch &k) {
        // After a refused launch the kernel is unusable: the rest of this batch runs as copies too.
        return usable(context) ? launch(context, l.function, k, stream) : copy_each(d, k.params, stream);
      },
      per_copy);
}

}  // namespace wb::cuda
