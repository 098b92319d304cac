#include "cuda_copy.hpp"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>

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
};

template <class F>
void resolve(void *lib, const char *name, F *out) {
  *out = reinterpret_cast<F>(dlsym(lib, name));
  if (*out == nullptr) throw std::runtime_error(std::string("libcuda has no ") + name);
}

const Driver &driver() {
  static Driver d;
  static std::once_flag once;
  std::call_once(once, [] {
    const char *env = std::getenv("WEIGHTBUS_LIBCUDA");  // the library's override, honoured the same way
    void *lib = dlopen(env && *env ? env : "libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) throw std::runtime_error(std::string("cannot load libcuda: ") + dlerror());
    resolve(lib, "cuInit", &d.cuInit);
    resolve(lib, "cuDeviceGet", &d.cuDeviceGet);
    resolve(lib, "cuDevicePrimaryCtxRetain", &d.cuDevicePrimaryCtxRetain);
    resolve(lib, "cuCtxSetCurrent", &d.cuCtxSetCurrent);
    resolve(lib, "cuMemcpyHtoD_v2", &d.cuMemcpyHtoD);
    resolve(lib, "cuMemcpyDtoH_v2", &d.cuMemcpyDtoH);
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
}

void copy_device_to_host(int32_t ordinal, void *host_dst, const void *device_src, uint64_t bytes) {
  const Driver &d = enter(ordinal);
  check(d.cuMemcpyDtoH(host_dst, reinterpret_cast<CUdeviceptr>(device_src), bytes), "cuMemcpyDtoH");
}

}  // namespace wbcli
