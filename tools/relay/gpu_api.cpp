#include "gpu_api.hpp"

#include <dlfcn.h>

#include <cstdlib>
#include <map>
#include <mutex>

#include "failures.hpp"

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

GpuApi load() {
  GpuApi a{};
  const char *env = std::getenv("WEIGHTBUS_LIBCUDA");  // libweightbus's override, honoured the same way
  void *cuda = open_library(env && *env ? env : "libcuda.so.1", "the CUDA driver");
  resolve(cuda, "cuInit", &a.cuInit);
  resolve(cuda, "cuDeviceGet", &a.cuDeviceGet);
  resolve(cuda, "cuDevicePrimaryCtxRetain", &a.cuDevicePrimaryCtxRetain);
  resolve(cuda, "cuCtxSetCurrent", &a.cuCtxSetCurrent);
  resolve(cuda, "cuMemAlloc_v2", &a.cuMemAlloc);
  resolve(cuda, "cuMemFree_v2", &a.cuMemFree);
  resolve(cuda, "cuMemcpyAsync", &a.cuMemcpyAsync);
  resolve(cuda, "cuStreamCreate", &a.cuStreamCreate);
  resolve(cuda, "cuStreamDestroy_v2", &a.cuStreamDestroy);
  resolve(cuda, "cuStreamQuery", &a.cuStreamQuery);
  resolve(cuda, "cuStreamWaitEvent", &a.cuStreamWaitEvent);
  resolve(cuda, "cuEventCreate", &a.cuEventCreate);
  resolve(cuda, "cuEventDestroy_v2", &a.cuEventDestroy);
  resolve(cuda, "cuEventRecord", &a.cuEventRecord);
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
