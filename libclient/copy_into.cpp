// Copy-into's entry point, built with and without CUDA: every target is checked before anything is copied, host
// tensors into host memory are copied with memcpy here, and the copies with a GPU on either side go to the CUDA
// part (cuda/copy.cpp), which a library built without cuda.h lacks: there they are WB_E_NO_CUDA.
#include <cstring>
#include <vector>

#include "cuda/hooks.hpp"
#include "error.hpp"
#include "layout.hpp"
#include "snapshot.hpp"
#include "struct_size.hpp"
#include "topic.hpp"

namespace wb {

namespace {

const wb_copy_target &target_at(const wb_copy_target *targets, uint32_t i) {
  return *reinterpret_cast<const wb_copy_target *>(reinterpret_cast<const char *>(targets) +
                                                   size_t(i) * targets[0].struct_size);
}

// What resolving a batch asks of the devices, asked once: the GPU count, and the ordinal of the last GPU seen.
struct Devices {
  int count = -1;
  uint8_t uuid[16] = {};
  int ordinal = -1;
};

int check_device(uint32_t i, int32_t device, Devices *devices) {
  if (device < -1) {
    return fail(WB_E_INVAL, "targets[%u].device is %d: a CUDA ordinal, or -1 for host memory", i, device);
  }
  if (device == -1) return WB_OK;
  if (devices->count < 0) {
    int rc = cuda::device_count(&devices->count);
    if (rc != WB_OK) return fail(rc, "targets[%u].device is %d: %s", i, device, wb_last_error());
  }
  if (device >= devices->count) {
    return fail(WB_E_INVAL, "targets[%u].device is %d, but this process sees %d GPU(s)", i, device, devices->count);
  }
  return WB_OK;
}

int ordinal_of_tensor(const wb_tensor_info &info, Devices *devices, int *ordinal) {
  if (devices->ordinal < 0 || memcmp(devices->uuid, info.device_uuid, sizeof(devices->uuid)) != 0) {
    int rc = cuda::ordinal_of(info.device_uuid, &devices->ordinal);
    if (rc != WB_OK) return rc;
    memcpy(devices->uuid, info.device_uuid, sizeof(devices->uuid));
  }
  *ordinal = devices->ordinal;
  return WB_OK;
}

int resolve(wb_snapshot *snapshot, uint32_t i, const wb_copy_target &target, uint32_t tensor_slot,
            uint32_t position, Devices *devices, cuda::Copy *out) {
  wb_tensor_info info = WB_TENSOR_INFO_INIT;
  int rc = lookup_tensor(snapshot, tensor_slot, position, &info);
  if (rc != WB_OK) return fail(rc, "targets[%u]: %s", i, wb_last_error());
  if ((rc = check_device(i, target.device, devices)) != WB_OK) return rc;
  if (target.dst == nullptr) return fail(WB_E_INVAL, "targets[%u] ('%s'): dst is NULL", i, info.name);
  if (target.dst_bytes < info.nbytes) {
    return fail(WB_E_SIZE, "targets[%u]: tensor '%s' has %llu bytes, but dst_bytes is %llu", i, info.name,
                (unsigned long long)info.nbytes, (unsigned long long)target.dst_bytes);
  }
  out->src = static_cast<const char *>(info.data);
  out->dst = static_cast<char *>(target.dst);
  out->bytes = info.nbytes;
  out->cuda = info.device_type == WB_DEVICE_CUDA || target.device >= 0;
  out->ordinal = target.device;
  if (info.device_type == WB_DEVICE_CUDA && (rc = ordinal_of_tensor(info, devices, &out->ordinal)) != WB_OK) {
    return fail(rc, "targets[%u] ('%s'): %s", i, info.name, wb_last_error());
  }
  return WB_OK;
}

// Every target's copy, checked before anything is copied.
int resolve_all(wb_snapshot *snapshot, const wb_copy_target *targets, uint32_t count,
                std::vector<cuda::Copy> *copies) {
  std::vector<TensorKey> keys(count);
  for (uint32_t i = 0; i < count; ++i) {
    keys[i].name = target_at(targets, i).name;
    keys[i].position = target_at(targets, i).index;
  }
  std::vector<uint32_t> slots, positions;
  uint32_t failed = 0;
  int rc = snapshot->topic->tensors.find_many(keys, &slots, &positions, &failed);
  if (rc != WB_OK) return fail(rc, "targets[%u]: %s", failed, wb_last_error());
  Devices devices;
  copies->resize(count);
  for (uint32_t i = 0; rc == WB_OK && i < count; ++i) {
    rc = resolve(snapshot, i, target_at(targets, i), slots[i], positions[i], &devices, &(*copies)[i]);
  }
  return rc;
}

}  // namespace

}  // namespace wb

using namespace wb;

extern "C" WB_API int wb_snapshot_copy_into(wb_snapshot *snapshot, const wb_copy_target *targets, uint32_t count,
                                            void *stream) try {
  if (snapshot == nullptr || targets == nullptr || count == 0) {
    return fail(WB_E_INVAL, "snapshot or targets is NULL, or count is 0");
  }
  int rc = check_struct_size(targets[0].struct_size, sizeof(wb_copy_target), "wb_copy_target");
  if (rc != WB_OK) return rc;
  std::vector<cuda::Copy> copies;
  if ((rc = resolve_all(snapshot, targets, count, &copies)) != WB_OK) return rc;
  bool any_cuda = false, any_host = false;
  for (const cuda::Copy &c : copies) {
    any_cuda |= c.cuda;
    any_host |= !c.cuda;
  }
  // Host bytes written by GPU work (a version published on a stream) are read once that work is done.
  if (any_host && (snapshot->record_flags & shm::kRecordOnStream) &&
      (rc = wb_snapshot_synchronize(snapshot, -1)) != WB_OK) {
    return rc;
  }
  for (const cuda::Copy &c : copies) {
    if (!c.cuda) memcpy(c.dst, c.src, c.bytes);
  }
  return any_cuda ? cuda::copy_on_stream(snapshot, copies, stream) : WB_OK;
} catch (...) {
  return wb::abi_error(__func__);
}
