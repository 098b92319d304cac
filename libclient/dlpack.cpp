// DLPack exports: a tensor of a snapshot or an update as a DLManagedTensor, or as DLPack 1.x's
// DLManagedTensorVersioned, that other libraries wrap without copying. A snapshot's export holds a reference to
// the snapshot, so its lease outlives wb_snapshot_release.
#include <weightbus/dlpack_versioned.h>

#include <cstring>
#include <memory>
#include <type_traits>

#include "error.hpp"
#include "snapshot.hpp"

namespace wb {

namespace {

// DLPack codes newer than Debian's dlpack.h (0.6), as DLPack 1.1 numbers them.
constexpr uint8_t kDLBoolCode = 6;
constexpr uint8_t kDLFloat8E4M3fnCode = 10;
constexpr uint8_t kDLFloat8E5M2Code = 12;
// What versioned exports say they are: 1.1, whose type codes dl_dtype uses.
constexpr DLPackVersion kVersion = {1, 1};

// What one export owns: the struct handed out (Managed: DLManagedTensor or DLManagedTensorVersioned), the
// arrays it points at, and the snapshot it pins (if any).
template <class Managed>
struct Export {
  Managed managed{};
  int64_t shape[WB_MAX_DIMS] = {};
  int64_t strides[WB_MAX_DIMS] = {};
  wb_snapshot *snapshot = nullptr;
};

// Allocates nothing, and so cannot throw: a deleter has no way to report a failure.
template <class Managed>
void delete_export(Managed *managed) noexcept {
  if (managed == nullptr) return;
  auto *owner = static_cast<Export<Managed> *>(managed->manager_ctx);
  if (owner->snapshot != nullptr) unref_snapshot(owner->snapshot);
  delete owner;
}

DLDataType dl_dtype(int32_t dtype) {
  auto bits = uint8_t(wb_dtype_size(dtype) * 8);
  switch (dtype) {
    case WB_DTYPE_BOOL: return {kDLBoolCode, bits, 1};
    case WB_DTYPE_I8: case WB_DTYPE_I16: case WB_DTYPE_I32: case WB_DTYPE_I64: return {kDLInt, bits, 1};
    case WB_DTYPE_F16: case WB_DTYPE_F32: case WB_DTYPE_F64: return {kDLFloat, bits, 1};
    case WB_DTYPE_BF16: return {kDLBfloat, bits, 1};
    case WB_DTYPE_F8E4M3: return {kDLFloat8E4M3fnCode, bits, 1};
    case WB_DTYPE_F8E5M2: return {kDLFloat8E5M2Code, bits, 1};
    default: return {kDLUInt, bits, 1};  // u8, u16, u32, u64: the registry holds no other dtype
  }
}

int dl_device(const wb_tensor_info &info, DLDevice *device) {
  if (info.device_type != WB_DEVICE_CUDA) {
    *device = {kDLCPU, 0};
    return WB_OK;
  }
  int32_t ordinal;
  int rc = wb_cuda_device_ordinal(info.device_uuid, &ordinal);
  if (rc != WB_OK) return rc;
  *device = {kDLCUDA, ordinal};
  return WB_OK;
}

// Fills the export of a looked-up tensor, made before the lookup (an update's marks the tensor changed: it
// must not fail after). Takes no reference: the caller adds the snapshot's on success.
template <class Managed>
int make_export(const wb_tensor_info &info, wb_snapshot *snapshot, std::unique_ptr<Export<Managed>> owner,
                Managed **out) {
  DLTensor &t = owner->managed.dl_tensor;
  int rc = dl_device(info, &t.device);
  if (rc != WB_OK) return rc;
  std::memcpy(owner->shape, info.shape, sizeof(owner->shape));
  std::memcpy(owner->strides, info.strides, sizeof(owner->strides));
  t.data = info.data;
  t.ndim = int32_t(info.ndim);
  t.dtype = dl_dtype(info.dtype);
  t.shape = owner->shape;
  t.strides = owner->strides;
  t.byte_offset = 0;
  if constexpr (std::is_same_v<Managed, DLManagedTensorVersioned>) {
    owner->managed.version = kVersion;
    // Readers must not write a version's bytes (host mappings are PROT_READ); an update's are for writing.
    owner->managed.flags = snapshot != nullptr ? DLPACK_FLAG_BITMASK_READ_ONLY : 0;
  }
  owner->snapshot = snapshot;
  owner->managed.manager_ctx = owner.get();
  owner->managed.deleter = delete_export<Managed>;
  *out = &owner.release()->managed;
  return WB_OK;
}

template <class Managed>
int export_snapshot_tensor(wb_snapshot *snapshot, const char *name, Managed **out) {
  if (snapshot == nullptr || out == nullptr) return fail(WB_E_INVAL, "snapshot or out is NULL");
  *out = nullptr;
  auto owner = std::make_unique<Export<Managed>>();
  wb_tensor_info info = WB_TENSOR_INFO_INIT;
  int rc = wb_snapshot_tensor(snapshot, name, &info);
  if (rc != WB_OK || (rc = make_export(info, snapshot, std::move(owner), out)) != WB_OK) return rc;
  snapshot->refs.fetch_add(1, std::memory_order_relaxed);
  return WB_OK;
}

template <class Managed>
int export_update_tensor(wb_update *update, const char *name, Managed **out) {
  if (update == nullptr || out == nullptr) return fail(WB_E_INVAL, "update or out is NULL");
  *out = nullptr;
  auto owner = std::make_unique<Export<Managed>>();
  wb_tensor_info info = WB_TENSOR_INFO_INIT;
  int rc = wb_update_tensor(update, name, &info);
  if (rc != WB_OK) return rc;
  return make_export(info, nullptr, std::move(owner), out);
}

}  // namespace

}  // namespace wb

using namespace wb;

extern "C" WB_API int wb_snapshot_dlpack(wb_snapshot *snapshot, const char *name, DLManagedTensor **out) try {
  return export_snapshot_tensor(snapshot, name, out);
} catch (...) {
  return wb::abi_error(__func__);
}

extern "C" WB_API int wb_update_dlpack(wb_update *update, const char *name, DLManagedTensor **out) try {
  return export_update_tensor(update, name, out);
} catch (...) {
  return wb::abi_error(__func__);
}

extern "C" WB_API int wb_snapshot_dlpack_versioned(wb_snapshot *snapshot, const char *name,
                                                   DLManagedTensorVersioned **out) try {
  return export_snapshot_tensor(snapshot, name, out);
} catch (...) {
  return wb::abi_error(__func__);
}

extern "C" WB_API int wb_update_dlpack_versioned(wb_update *update, const char *name,
                                                 DLManagedTensorVersioned **out) try {
  return export_update_tensor(update, name, out);
} catch (...) {
  return wb::abi_error(__func__);
}
