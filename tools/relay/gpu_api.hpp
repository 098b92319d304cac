// libcuda (through core/libcuda.hpp) and libnccl.so.2, loaded with dlopen when the NCCL transport starts:
// weightbus never links them, so the CLI runs where they are absent and only `relay --transport nccl` needs
// them. cuda.h and nccl.h give the types. Failures throw RelayError(kExitFailure) naming the library or the call
// and its result.
#pragma once

#include <cuda.h>
#include <nccl.h>

#include <string>

namespace wbrelay {

struct GpuApi {
  CUresult (*cuInit)(unsigned);
  CUresult (*cuDeviceGet)(CUdevice *, int);
  CUresult (*cuDevicePrimaryCtxRetain)(CUcontext *, CUdevice);
  CUresult (*cuCtxSetCurrent)(CUcontext);
  CUresult (*cuMemAlloc)(CUdeviceptr *, size_t);
  CUresult (*cuMemFree)(CUdeviceptr);
  CUresult (*cuMemcpyAsync)(CUdeviceptr, CUdeviceptr, size_t, CUstream);
  CUresult (*cuStreamCreate)(CUstream *, unsigned);
  CUresult (*cuStreamDestroy)(CUstream);
  CUresult (*cuStreamQuery)(CUstream);
  CUresult (*cuStreamWaitEvent)(CUstream, CUevent, unsigned);
  CUresult (*cuEventCreate)(CUevent *, unsigned);
  CUresult (*cuEventDestroy)(CUevent);
  CUresult (*cuEventRecord)(CUevent, CUstream);
  ncclResult_t (*ncclGetUniqueId)(ncclUniqueId *);
  ncclResult_t (*ncclCommInitRankConfig)(ncclComm_t *, int, ncclUniqueId, int, ncclConfig_t *);
  ncclResult_t (*ncclCommGetAsyncError)(ncclComm_t, ncclResult_t *);
  ncclResult_t (*ncclCommAbort)(ncclComm_t);
  ncclResult_t (*ncclBroadcast)(const void *, void *, size_t, ncclDataType_t, int, ncclComm_t, cudaStream_t);
  ncclResult_t (*ncclSend)(const void *, size_t, ncclDataType_t, int, ncclComm_t, cudaStream_t);
  ncclResult_t (*ncclRecv)(void *, size_t, ncclDataType_t, int, ncclComm_t, cudaStream_t);
  const char *(*ncclGetErrorString)(ncclResult_t);
  const char *(*ncclGetLastError)(ncclComm_t);
};

// Loads both libraries once; later calls return the same table.
const GpuApi &gpu_api();

// Throws naming the call when rc is not CUDA_SUCCESS.
void cu_check(CUresult rc, const char *call);

// Makes the primary context of GPU ordinal current on this thread (the one libweightbus and the CUDA runtime
// use).
void enter_device(int ordinal);

}  // namespace wbrelay
