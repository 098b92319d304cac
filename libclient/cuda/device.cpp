#include "device.hpp"

#include <cstdio>
#include <cstring>
#include <mutex>
#include <vector>

#include "driver.hpp"
#include "error.hpp"
#include "weightbus/weightbus.h"

namespace wb::cuda {

namespace {

struct Device {
  CUdevice handle = 0;
  uint8_t uuid[16] = {};
  CUcontext primary = nullptr;  // retained on first use
};

// The devices of this process, listed once: their set never changes while a process runs.
struct Devices {
  std::mutex mutex;
  bool listed = false;
  std::vector<Device> list;
};

Devices &devices() {
  static Devices all;
  return all;
}

int list_devices(const Driver *d, Devices &all) {
  if (all.listed) return WB_OK;
  all.list.clear();  // what an attempt that ran out of memory left
  int count = 0;
  int rc = check(d->cuDeviceGetCount(&count), "cuDeviceGetCount");
  for (int i = 0; rc == WB_OK && i < count; ++i) {
    Device dev;
    rc = check(d->cuDeviceGet(&dev.handle, i), "cuDeviceGet");
    CUuuid uuid;
    if (rc == WB_OK) rc = check(d->cuDeviceGetUuid(&uuid, dev.handle), "cuDeviceGetUuid");
    if (rc == WB_OK) memcpy(dev.uuid, uuid.bytes, sizeof(dev.uuid));
    all.list.push_back(dev);
  }
  if (rc != WB_OK) {
    all.list.clear();
    return rc;
  }
  all.listed = true;
  return WB_OK;
}

// Runs fn(list) under the lock once the devices are listed.
template <typename Fn>
int with_devices(Fn fn) {
  const Driver *d = nullptr;
  int rc = driver(&d);
  if (rc != WB_OK) return rc;
  Devices &all = devices();
  std::lock_guard lock(all.mutex);
  if ((rc = list_devices(d, all)) != WB_OK) return rc;
  return fn(d, all.list);
}

int check_ordinal(int ordinal, size_t count) {
  if (ordinal < 0 || size_t(ordinal) >= count) {
    return fail(WB_E_INVAL, "CUDA device %d does not exist: this process sees %zu GPU(s)", ordinal, count);
  }
  return WB_OK;
}

}  // namespace

std::string uuid_text(const uint8_t uuid[16]) {
  char text[48];
  snprintf(text, sizeof(text), "GPU-%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", uuid[0],
           uuid[1], uuid[2], uuid[3], uuid[4], uuid[5], uuid[6], uuid[7], uuid[8], uuid[9], uuid[10], uuid[11],
           uuid[12], uuid[13], uuid[14], uuid[15]);
  return text;
}

int device_count(int *count) {
  return with_devices([count](const Driver *, std::vector<Device> &list) {
    *count = int(list.size());
    return WB_OK;
  });
}

int uuid_of(int ordinal, uint8_t uuid[16]) {
  return with_devices([&](const Driver *, std::vector<Device> &list) {
    int rc = check_ordinal(ordinal, list.size());
    if (rc == WB_OK) memcpy(uuid, list[size_t(ordinal)].uuid, 16);
    return rc;
  });
}

int ordinal_of(const uint8_t uuid[16], int *ordinal) {
  return with_devices([&](const Driver *, std::vector<Device> &list) {
    for (size_t i = 0; i < list.size(); ++i) {
      if (memcmp(list[i].uuid, uuid, 16) == 0) {
        *ordinal = int(i);
        return WB_OK;
      }
    }
    return fail(WB_E_NOT_FOUND, "GPU %s is not visible in this process (%zu GPU(s) visible; see CUDA_VISIBLE_DEVICES)",
                uuid_text(uuid).c_str(), list.size());
  });
}

int primary_context(int ordinal, CUcontext *context) {
  return with_devices([&](const Driver *d, std::vector<Device> &list) {
    int rc = check_ordinal(ordinal, list.size());
    if (rc != WB_OK) return rc;
    Device &dev = list[size_t(ordinal)];
    if (dev.primary == nullptr) {
      rc = check(d->cuDevicePrimaryCtxRetain(&dev.primary, dev.handle), "cuDevicePrimaryCtxRetain");
      if (rc != WB_OK) return rc;
    }
    *context = dev.primary;
    return WB_OK;
  });
}

int context_ordinal(CUcontext context, int *ordinal) {
  ContextGuard guard;
  int rc = guard.push(context);
  if (rc != WB_OK) return rc;
  return with_devices([&](const Driver *d, std::vector<Device> &list) {
    CUdevice dev;
    int found = check(d->cuCtxGetDevice(&dev), "cuCtxGetDevice");
    for (size_t i = 0; found == WB_OK && i < list.size(); ++i) {
      if (list[i].handle == dev) {
        *ordinal = int(i);
        return WB_OK;
      }
    }
    return found != WB_OK ? found
                          : fail(WB_E_CUDA, "the context's device %d is not among this process's GPUs", int(dev));
  });
}

int stream_context(void *stream, int fallback_ordinal, CUcontext *context) {
  const Driver *d = nullptr;
  int rc = driver(&d);
  if (rc != WB_OK) return rc;
  if (stream != nullptr) return check(d->cuStreamGetCtx(static_cast<CUstream>(stream), context), "cuStreamGetCtx");
  *context = nullptr;
  if ((rc = check(d->cuCtxGetCurrent(context), "cuCtxGetCurrent")) != WB_OK) return rc;
  return *context != nullptr ? WB_OK : primary_context(fallback_ordinal, context);
}

}  // namespace wb::cuda

using namespace wb;

extern "C" WB_API int wb_cuda_init(void) try {
  int count = 0;
  return cuda::device_count(&count);
} catch (...) {
  return wb::abi_error(__func__);
}

extern "C" WB_API int wb_cuda_device_uuid(int32_t ordinal, uint8_t uuid[16]) try {
  if (uuid == nullptr) return fail(WB_E_INVAL, "uuid is NULL");
  return cuda::uuid_of(ordinal, uuid);
} catch (...) {
  return wb::abi_error(__func__);
}

extern "C" WB_API int wb_cuda_device_ordinal(const uint8_t uuid[16], int32_t *ordinal) try {
  if (uuid == nullptr || ordinal == nullptr) return fail(WB_E_INVAL, "uuid or ordinal is NULL");
  int found = 0;
  int rc = cuda::ordinal_of(uuid, &found);
  if (rc == WB_OK) *ordinal = found;
  return rc;
} catch (...) {
  return wb::abi_error(__func__);
}
