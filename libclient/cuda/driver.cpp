#include "driver.hpp"

#include <mutex>
#include <string>

#include "error.hpp"
#include "libcuda.hpp"
#include "weightbus/weightbus.h"

namespace wb::cuda {

namespace {

// The oldest driver whose behaviour the library relies on: lazy peer access for IPC, VMM with POSIX fds,
// memory-pool pointer attributes, per-chunk cuMemGetAddressRange of VMM mappings.
constexpr int kMinDriverVersion = 11030;

#define WB_CUDA_STR2(x) #x
#define WB_CUDA_STR(x) WB_CUDA_STR2(x)

struct Loaded {
  Driver driver;
  int code = WB_OK;
  std::string message;
};

int resolve(Driver *d, std::string *missing) {
#define WB_CUDA_RESOLVE(fn)                          \
  if (!libcuda::resolve(WB_CUDA_STR(fn), &d->fn)) { \
    *missing = WB_CUDA_STR(fn);                      \
    return WB_E_NO_CUDA;                             \
  }
  WB_CUDA_FUNCTIONS(WB_CUDA_RESOLVE)
#undef WB_CUDA_RESOLVE
  return WB_OK;
}

void load(Loaded *out) {
  const libcuda::Library &lib = libcuda::open();
  const char *name = lib.file.c_str();
  if (lib.handle == nullptr) {
    out->code = WB_E_NO_CUDA;
    out->message = std::string("cannot load the CUDA driver ") + name + " (" + lib.error +
                   "): no NVIDIA driver on this machine?";
    return;
  }
  std::string missing;
  if (resolve(&out->driver, &missing) != WB_OK) {
    out->code = WB_E_NO_CUDA;
    out->message = std::string("the CUDA driver ") + name + " lacks " + missing + ": driver too old";
    return;
  }
  int version = 0;
  CUresult r = out->driver.cuDriverGetVersion(&version);
  if (r != CUDA_SUCCESS) {
    const char *err = nullptr;
    out->driver.cuGetErrorName(r, &err);
    out->code = WB_E_NO_CUDA;
    out->message = std::string("the CUDA driver ") + name + " does not work: cuDriverGetVersion failed with " +
                   (err ? err : "an unknown error") + (r == CUDA_ERROR_STUB_LIBRARY ? " (a stub library)" : "");
    return;
  }
  if (version < kMinDriverVersion) {
    out->code = WB_E_NO_CUDA;
    out->message = "the CUDA driver supports CUDA " + std::to_string(version / 1000) + "." +
                   std::to_string(version % 1000 / 10) + "; weightbus needs 11.3 or later";
    return;
  }
  r = out->driver.cuInit(0);
  if (r != CUDA_SUCCESS) {
    const char *err = nullptr;
    out->driver.cuGetErrorName(r, &err);
    out->code = WB_E_NO_CUDA;
    out->message = std::string("cuInit failed with ") + (err ? err : "an unknown error") +
                   (r == CUDA_ERROR_NO_DEVICE ? ": no CUDA GPU is visible (see CUDA_VISIBLE_DEVICES)" : "");
  }
}

}  // namespace

int driver(const Driver **out) {
  static Loaded loaded;
  static std::once_flag once;
  std::call_once(once, load, &loaded);
  if (loaded.code != WB_OK) return fail(loaded.code, "%s", loaded.message.c_str());
  *out = &loaded.driver;
  return WB_OK;
}

int check(CUresult result, const char *what) {
  if (result == CUDA_SUCCESS) return WB_OK;
  const Driver *d = nullptr;
  const char *name = nullptr;
  const char *text = nullptr;
  if (driver(&d) == WB_OK) {
    d->cuGetErrorName(result, &name);
    d->cuGetErrorString(result, &text);
  }
  int code = WB_E_CUDA;
  if (result == CUDA_ERROR_OUT_OF_MEMORY) code = WB_E_NOMEM;
  if (result == CUDA_ERROR_NO_DEVICE || result == CUDA_ERROR_SYSTEM_DRIVER_MISMATCH ||
      result == CUDA_ERROR_STUB_LIBRARY) {
    code = WB_E_NO_CUDA;
  }
  return fail(code, "%s: %s (%s)", what, name ? name : "CUDA error", text ? text : "no description");
}

int run_and_wait(const Driver *d, const std::function<int(CUstream)> &enqueue) {
  CUstream stream = nullptr;
  int rc = check(d->cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
  if (rc != WB_OK) return rc;
  rc = enqueue(stream);
  // Waited for after a failure too: what was enqueued before it may still read the caller's bytes.
  int synced = check(d->cuStreamSynchronize(stream), "cuStreamSynchronize");
  d->cuStreamDestroy(stream);
  return rc != WB_OK ? rc : synced;
}

int upload(const Driver *d, CUdeviceptr dst, std::initializer_list<HostBytes> pieces) {
  return run_and_wait(d, [&](CUstream stream) {
    for (const HostBytes &piece : pieces) {
      if (piece.size == 0) continue;
      if (int rc = check(d->cuMemcpyHtoDAsync(dst, piece.data, piece.size, stream), "cuMemcpyHtoDAsync"); rc != WB_OK) {
        return rc;
      }
      dst += piece.size;
    }
    return int(WB_OK);
  });
}

ContextGuard::~ContextGuard() {
  const Driver *d = nullptr;
  CUcontext popped;
  if (pushed_ && driver(&d) == WB_OK) d->cuCtxPopCurrent(&popped);
}

int ContextGuard::push(CUcontext context) {
  const Driver *d = nullptr;
  int rc = driver(&d);
  if (rc != WB_OK) return rc;
  rc = check(d->cuCtxPushCurrent(context), "cuCtxPushCurrent");
  pushed_ = rc == WB_OK;
  return rc;
}

}  // namespace wb::cuda
