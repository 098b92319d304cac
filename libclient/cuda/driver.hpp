// libcuda, loaded with dlopen on the first CUDA call: the library never links it, so that it loads and works
// on machines with no GPU and no driver. cuda.h provides the types only. Each function is resolved by the
// versioned symbol that cuda.h's macros select for its name (cuMemGetAddressRange -> cuMemGetAddressRange_v2),
// so every pointer has exactly the prototype the header declares.
#pragma once

#include <functional>
#include <initializer_list>

#include <cuda.h>

namespace wb::cuda {

// The driver functions the library calls.
#define WB_CUDA_FUNCTIONS(X)                                                                                           \
  X(cuInit)                                                                                                            \
  X(cuDriverGetVersion) X(cuGetErrorName) X(cuGetErrorString) X(cuDeviceGet) X(cuDeviceGetCount) X(cuDeviceGetUuid)    \
      X(cuDeviceCanAccessPeer) X(cuDevicePrimaryCtxRetain) X(cuCtxPushCurrent) X(cuCtxPopCurrent) X(cuCtxGetCurrent)   \
          X(cuCtxGetDevice) X(cuStreamGetCtx) X(cuStreamGetFlags) X(cuPointerGetAttribute) X(cuMemGetAddressRange) X(cuIpcGetMemHandle)    \
              X(cuIpcOpenMemHandle) X(cuIpcCloseMemHandle) X(cuMemCreate) X(cuMemRelease) X(cuMemAddressReserve)       \
                  X(cuMemAddressFree) X(cuMemMap) X(cuMemUnmap) X(cuMemSetAccess) X(cuMemGetAllocationGranularity)     \
                      X(cuMemExportToShareableHandle) X(cuMemImportFromShareableHandle) X(cuMemRetainAllocationHandle) \
                          X(cuMemcpyAsync) X(cuEventCreate) X(cuEventDestroy) X(cuEventRecord)                         \
                              X(cuEventQuery) X(cuEventSynchronize) X(cuStreamWaitEvent) X(cuIpcGetEventHandle)        \
                                  X(cuIpcOpenEventHandle) X(cuStreamCreate) X(cuStreamDestroy)                         \
                                      X(cuDeviceGetAttribute) X(cuPointerGetAttributes) X(cuModuleLoadData)            \
                                          X(cuModuleUnload) X(cuModuleGetFunction) X(cuLaunchKernel)                  \
                                              X(cuStreamSynchronize) X(cuMemcpy2DAsync) X(cuMemsetD8Async)            \
                                                  X(cuMemsetD2D8Async) X(cuMemAlloc) X(cuMemFree)             \
                                                      X(cuMemcpyHtoDAsync) X(cuMemHostRegister) X(cuMemHostUnregister) \
                                                          X(cuMemHostGetDevicePointer) X(cuStreamWriteValue64)         \
                                                              X(cuStreamWaitValue64)

struct Driver {
#define WB_CUDA_POINTER(fn) decltype(&::fn) fn = nullptr;
  WB_CUDA_FUNCTIONS(WB_CUDA_POINTER)
#undef WB_CUDA_POINTER
};

// The loaded, initialised driver. The first call opens libcuda (core/libcuda.hpp) and runs cuInit;
// later calls return the same result at once. WB_OK, or WB_E_NO_CUDA with the reason (remembered).
int driver(const Driver **out);

// WB_OK for CUDA_SUCCESS; otherwise a WB_E_* code (WB_E_NOMEM for out of memory, WB_E_NO_CUDA for a missing
// device or driver, WB_E_CUDA for the rest) with a message naming what was being done and the CUresult.
int check(CUresult result, const char *what);

// Runs enqueue(stream) on a stream of the call's own in the current context and waits for that stream: what it
// enqueued is then done for every stream. For host-to-device copies and memsets that kernels on other streams
// rely on: cuMemcpyHtoD from pageable memory returns once the bytes are staged, and cuMemsetD8 at once, their
// work left on the legacy stream, which a non-blocking stream does not wait for (a plan's first run could read
// descriptors not yet there). Nor a wait for the legacy stream or the device: another stream's
// cuStreamWaitValue64 (a GPU arm's), or the caller's own work, may hold either up.
int run_and_wait(const Driver *d, const std::function<int(CUstream)> &enqueue);

// Host bytes, pieces laid back to back from dst in device memory of the current context, by run_and_wait:
// there for every stream once this returns. Empty pieces are skipped.
struct HostBytes {
  const void *data;
  size_t size;
};
int upload(const Driver *d, CUdeviceptr dst, std::initializer_list<HostBytes> pieces);

// Makes a context current on this thread for the guard's lifetime, restoring the previous one after.
class ContextGuard {
 public:
  ContextGuard() = default;
  ContextGuard(const ContextGuard &) = delete;
  ContextGuard &operator=(const ContextGuard &) = delete;
  ~ContextGuard();
  int push(CUcontext context);

 private:
  bool pushed_ = false;
};

}  // namespace wb::cuda
