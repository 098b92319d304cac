#include "copy_batch.hpp"

#include "copy.hpp"
#include "device.hpp"
#include "driver.hpp"
#include "kernel_reach.hpp"
#include "weightbus/weightbus.h"

namespace wb::cuda {

namespace {

// Kernel parameters past 4 KiB need a CUDA 12.1 driver (and compute capability 7.0, below the PTX's own).
constexpr int kMinDriverVersion = 12010;

// Whether the kernel can run in the current context: PTX built in, a driver with room for its parameters and
// a GPU of at least the PTX's architecture (WB_COPY_KERNEL_MIN_CC, e.g. 75 for compute_75).
bool supported(const Driver *d) {
  int version = 0, major = 0, minor = 0;
  CUdevice device;
  return kCopyKernelPtx[0] != '\0' && d->cuDriverGetVersion(&version) == CUDA_SUCCESS && version >= kMinDriverVersion &&
         d->cuCtxGetDevice(&device) == CUDA_SUCCESS &&
         d->cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device) == CUDA_SUCCESS &&
         d->cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device) == CUDA_SUCCESS &&
         major * 10 + minor >= WB_COPY_KERNEL_MIN_CC;
}

// Loads the module in the current context; a function stays nullptr when the driver refuses it.
void load_module(const Driver *d, CUmodule *module, CUfunction *function, CUfunction *plan) {
  CUmodule m = nullptr;
  if (d->cuModuleLoadData(&m, kCopyKernelPtx) != CUDA_SUCCESS) return;
  *module = m;
  CUfunction f = nullptr;
  if (d->cuModuleGetFunction(&f, m, "wb_copy_batch") == CUDA_SUCCESS) *function = f;
  if (d->cuModuleGetFunction(&f, m, "wb_copy_plan") == CUDA_SUCCESS) *plan = f;
}

int copy_each(const Driver *d, const wb_copy_params &params, CUstream stream) {
  int rc = WB_OK;
  for (unsigned i = 0; rc == WB_OK && i < params.count; ++i) {
    const wb_copy_desc &c = params.copies[i];
    rc = memcpy_async(d, Copy{reinterpret_cast<const char *>(c.src), reinterpret_cast<char *>(c.dst), c.bytes}, stream);
  }
  return rc;
}

}  // namespace

CopyKernel::~CopyKernel() {
  const Driver *d = nullptr;
  if (driver(&d) != WB_OK) return;
  for (const Loaded &l : loaded_) {
    ContextGuard guard;
    if (l.module != nullptr && guard.push(l.context) == WB_OK) d->cuModuleUnload(l.module);
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
  if (driver(&d) == WB_OK && supported(d) && context_ordinal(context, &l.ordinal) == WB_OK) {
    load_module(d, &l.module, &l.function, &l.plan);
  }
  loaded_.push_back(l);
  return l;
}

bool CopyKernel::usable(CUcontext context) { return loaded(context).function != nullptr; }

CUfunction CopyKernel::plan_function(CUcontext context) { return loaded(context).plan; }

void CopyKernel::plan_refused(CUcontext context) {
  std::lock_guard lock(mutex_);
  for (Loaded &l : loaded_) {
    if (l.context == context) l.plan = nullptr;
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
