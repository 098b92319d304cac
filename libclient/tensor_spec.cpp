// A caller's specs, read and checked (tensor_spec.hpp).
#include "tensor_spec.hpp"

#include "error.hpp"
#include "geometry.hpp"
#include "struct_size.hpp"

namespace wb {

namespace {

const wb_shard_spec &shard_spec_at(const wb_shard_spec *specs, uint32_t i) {
  return *reinterpret_cast<const wb_shard_spec *>(reinterpret_cast<const char *>(specs) +
                                                  size_t(i) * specs[0].struct_size);
}

int check_request(const TensorRequest &r) {
  int rc = geometry::check_name(r.name, "tensor");
  if (rc != WB_OK) return rc;
  uint64_t nbytes;
  rc = geometry::contiguous_bytes(r.dtype, r.ndim, r.shape, &nbytes);
  if (rc != WB_OK) return fail(rc, "tensor '%s': %s", r.name, wb_last_error());
  if (r.shard != nullptr && (r.shard->flags & ~WB_SHARD_REPLICATED) != 0) {
    return fail(WB_E_INVAL, "tensor '%s': unknown shard flags 0x%x", r.name, r.shard->flags);
  }
  return WB_OK;
}

}  // namespace

const wb_tensor_spec &spec_at(const wb_tensor_spec *specs, uint32_t i) {
  return *reinterpret_cast<const wb_tensor_spec *>(reinterpret_cast<const char *>(specs) +
                                                   size_t(i) * specs[0].struct_size);
}

int check_spec(const wb_tensor_spec &spec) {
  return check_request(TensorRequest{spec.name, spec.dtype, spec.ndim, spec.shape, nullptr});
}

int read_requests(const wb_tensor_spec *specs, uint32_t count, std::vector<TensorRequest> *out) {
  if (specs == nullptr || count == 0) return fail(WB_E_INVAL, "specs is NULL, or count is 0");
  int rc = check_struct_size(specs[0].struct_size, sizeof(wb_tensor_spec), "wb_tensor_spec");
  if (rc != WB_OK) return rc;
  out->clear();
  for (uint32_t i = 0; i < count; ++i) {
    const wb_tensor_spec &spec = spec_at(specs, i);
    out->push_back(TensorRequest{spec.name, spec.dtype, spec.ndim, spec.shape, nullptr});
    if ((rc = check_request(out->back())) != WB_OK) return rc;
  }
  return WB_OK;
}

int read_requests(const wb_shard_spec *specs, uint32_t count, std::vector<TensorRequest> *out) {
  if (specs == nullptr || count == 0) return fail(WB_E_INVAL, "specs is NULL, or count is 0");
  int rc = check_struct_size(specs[0].struct_size, sizeof(wb_shard_spec), "wb_shard_spec");
  if (rc != WB_OK) return rc;
  out->clear();
  for (uint32_t i = 0; i < count; ++i) {
    const wb_shard_spec &spec = shard_spec_at(specs, i);
    out->push_back(TensorRequest{spec.name, spec.dtype, spec.ndim, spec.extent, &spec});
    if ((rc = check_request(out->back())) != WB_OK) return rc;
  }
  return WB_OK;
}

flatbuffers::Offset<proto::ShardRegion> build_shard(flatbuffers::FlatBufferBuilder &builder, const TensorRequest &r) {
  if (r.shard == nullptr) return 0;
  std::vector<int64_t> logical(r.shard->logical_shape, r.shard->logical_shape + r.ndim);
  std::vector<int64_t> offset(r.shard->offset, r.shard->offset + r.ndim);
  return proto::CreateShardRegionDirect(builder, &logical, &offset, r.shard->flags);
}

}  // namespace wb
