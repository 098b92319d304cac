#include "cuda_copy.hpp"

#include <mutex>
#include <stdexcept>
#include <string>

#include "libcuda.hpp"

namespace wbcli {
namespace {

// The few driver types and entry points used, declared here so that the tool builds without cuda.h.
using CUresult = int;
using CUdevice = int;
using CUcontext = void *;
using CUdeviceptr = unsigned long long;

struct Driver {
  CUresult (*cuInit)(unsigned);
  CUresult (*cuDeviceGet)(CUdevice *, int);
  CUresult (*cuDevicePrimaryCtxRetain)(CUcontext *, CUdevice);
  CUresult (*cuCtxSetCurrent)(CUcontext);
  CUresult (*cuMemcpyHtoD)(CUdeviceptr, const void *, size_t);
  CUresult (*cuMemcpyDtoH)(void *, CUdeviceptr, size_t);
  CUresult (*cuCtxSynchronize)();
};

template <class F>
void resolve(const char *name, F *out) {
  if (!wb::libcuda::resolve(name, out)) throw std::runtime_error(std::string("libcuda has no ") + name);
}

const Driver &driver() {
  static Driver d;
  static std::once_flag once;
  std::call_once(once, [] {
    // The loader libweightbus uses (core/libcuda.hpp), so $WEIGHTBUS_LIBCUDA is honoured alike.
    const wb::libcuda::Library &lib = wb::libcuda::open();
    if (lib.handle == nullptr) throw std::runtime_error("cannot load libcuda: " + lib.error);
    resolve("cuInit", &d.cuInit);
    resolve("cuDeviceGet", &d.cuDeviceGet);
    resolve("cuDevicePrimaryCtxRetain", &d.cuDevicePrimaryCtxRetain);
    resolve("cuCtxSetCurrent", &d.cuCtxSetCurrent);
    resolve("cuMemcpyHtoD_v2", &d.cuMemcpyHtoD);
    resolve("cuMemcpyDtoH_v2", &d.cuMemcpyDtoH);
    resolve("cuCtxSynchronize", &d.cuCtxSynchronize);
  });
  return d;
}

void check(CUresult rc, const char *call) {
  if (rc != 0) throw std::runtime_error(std::string(call) + " failed with CUresult " + std::to_string(rc));
}

// Makes the GPU's primary context current on this thread. Each call retains it again and nothing releases it:
// the count only keeps the context alive until the tool exits, soon after.
const Driver &enter(int32_t ordinal) {
  const Driver &d = driver();
  check(d.cuInit(0), "cuInit");
  CUdevice device = 0;
  check(d.cuDeviceGet(&device, ordinal), "cuDeviceGet");
  CUcontext context = nullptr;
  check(d.cuDevicePrimaryCtxRetain(&context, device), "cuDevicePrimaryCtxRetain");
  check(d.cuCtxSetCurrent(context), "cuCtxSetCurrent");
  return d;
}

}  // namespace

void copy_host_to_device(int32_t ordinal, void *device_dst, const void *host_src, uint64_t bytes) {
  const Driver &d = enter(ordinal);
  check(d.cuMemcpyHtoD(reinterpret_cast<CUdeviceptr>(device_dst), host_src, bytes), "cuMemcpyHtoD");
  // From pageable memory the copy returns once the bytes are staged, the DMA still queued: the version is
  // published without a stream, so its bytes must be in place before, for readers' streams in other processes.
  check(d.cuCtxSynchronize(), "cuCtxSynchronize");
}

void copy_device_to_host(int32_t ordinal, void *host_dst, const void *device_src, uint64_t bytes) {
  const Driver &d = enter(ordinal);
  check(d.cuMemcpyDtoH(host_dst, reinterpret_cast<CUdeviceptr>(device_src), bytes), "cuMemcpyDtoH");
}

}  // namespace wbcli
