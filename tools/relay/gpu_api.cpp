#include "gpu_api.hpp"

#include <dlfcn.h>

#include <map>
#include <mutex>

#include "failures.hpp"
#include "libcuda.hpp"

namespace wbrelay {

namespace {

void *open_library(const char *file, const char *what) {
  void *lib = dlopen(file, RTLD_NOW | RTLD_LOCAL);
  if (lib == nullptr) {
    throw RelayError(kExitFailure, std::string("--transport nccl needs ") + what + ": cannot load " + file + ": " + dlerror());
  }
  return lib;
}

template <class F>
void resolve(void *lib, const char *name, F *out) {
  *out = reinterpret_cast<F>(dlsym(lib, name));
  if (*out == nullptr) throw RelayError(kExitFailure, std::string("the loaded library has no ") + name);
}

// libcuda comes from the loader libweightbus uses (core/libcuda.hpp), so $WEIGHTBUS_LIBCUDA is honoured alike.
void open_libcuda() {
  const wb::libcuda::Library &lib = wb::libcuda::open();
  if (lib.handle == nullptr) {
    throw RelayError(kExitFailure, "--transport nccl needs the CUDA driver: cannot load " + lib.file + ": " + lib.error);
  }
}

template <class F>
void resolve_cuda(const char *name, F *out) {
  if (!wb::libcuda::resolve(name, out)) throw RelayError(kExitFailure, std::string("the loaded library has no ") + name);
}

GpuApi load() {
  GpuApi a{};
  open_libcuda();
  resolve_cuda("cuInit", &a.cuInit);
  resolve_cuda("cuDeviceGet", &a.cuDeviceGet);
  resolve_cuda("cuDevicePrimaryCtxRetain", &a.cuDevicePrimaryCtxRetain);
  resolve_cuda("cuCtxSetCurrent", &a.cuCtxSetCurrent);
  resolve_cuda("cuMemAlloc_v2", &a.cuMemAlloc);
  resolve_cuda("cuMemFree_v2", &a.cuMemFree);
  resolve_cuda("cuMemcpyAsync", &a.cuMemcpyAsync);
  resolve_cuda("cuStreamCreate", &a.cuStreamCreate);
  resolve_cuda("cuStreamDestroy_v2", &a.cuStreamDestroy);
  resolve_cuda("cuStreamQuery", &a.cuStreamQuery);
  resolve_cuda("cuStreamWaitEvent", &a.cuStreamWaitEvent);
  resolve_cuda("cuEventCreate", &a.cuEventCreate);
  resolve_cuda("cuEventDestroy_v2", &a.cuEventDestroy);
  resolve_cuda("cuEventRecord", &a.cuEventRecord);
  void *nccl = open_library("libnccl.so.2", "NCCL");
  resolve(nccl, "ncclGetUniqueId", &a.ncclGetUniqueId);
  resolve(nccl, "ncclCommInitRankConfig", &a.ncclCommInitRankConfig);
  resolve(nccl, "ncclCommGetAsyncError", &a.ncclCommGetAsyncError);
  resolve(nccl, "ncclCommAbort", &a.ncclCommAbort);
  resolve(nccl, "ncclBroadcast", &a.ncclBroadcast);
  resolve(nccl, "ncclSend", &a.ncclSend);
  resolve(nccl, "ncclRecv", &a.ncclRecv);
  resolve(nccl, "ncclGetErrorString", &a.ncclGetErrorString);
  resolve(nccl, "ncclGetLastError", &a.ncclGetLastError);
  return a;
}

}  // namespace

const GpuApi &gpu_api() {
  static GpuApi api;
  static std::once_flag once;
  std::call_once(once, [] { api = load(); });
  return api;
}

void cu_check(CUresult rc, const char *call) {
  if (rc != CUDA_SUCCESS) throw RelayError(kExitFailure, std::string(call) + " failed with CUresult " + std::to_string(int(rc)));
}

void enter_device(int ordinal) {
  // Retained once per GPU and kept for the process's life: every send and receive enters its device again.
  static std::mutex mutex;
  static std::map<int, CUcontext> retained;
  const GpuApi &a = gpu_api();
  std::lock_guard lock(mutex);
  CUcontext &context = retained[ordinal];
  if (context == nullptr) {
    cu_check(a.cuInit(0), "cuInit");
    CUdevice device = 0;
    cu_check(a.cuDeviceGet(&device, ordinal), "cuDeviceGet");
    cu_check(a.cuDevicePrimaryCtxRetain(&context, device), "cuDevicePrimaryCtxRetain");
  }
  cu_check(a.cuCtxSetCurrent(context), "cuCtxSetCurrent");
}

}  // namespace wbrelay
