// A caller's tensor specs as the requests the library sends: wb_tensor_spec arrays (wb_tensor_alloc, the CUDA
// allocation and registration in cuda/alloc.cpp, cuda/register.cpp) and wb_shard_spec arrays (their shard
// variants, shard.cpp), both read into TensorRequest, which the one path of each call carries to the broker.
#pragma once

#include <cstdint>
#include <vector>

#include "protocol_generated.h"
#include "weightbus/weightbus.h"

struct wb_topic;

namespace wb {

// specs[i] of an array whose elements are specs[0].struct_size bytes apart, and its checks (name, dtype,
// shape).
const wb_tensor_spec &spec_at(const wb_tensor_spec *specs, uint32_t i);
int check_spec(const wb_tensor_spec &spec);

// One tensor of a request: a plain topic's tensor (shard NULL) or a shard, whose shape is its extent. Points into
// the caller's spec.
struct TensorRequest {
  const char *name;
  int32_t dtype;
  uint32_t ndim;
  const int64_t *shape;
  const wb_shard_spec *shard;
};

// The requests of a caller's array (struct_size checked first, then every spec): WB_E_INVAL, WB_E_NAME_TOO_LONG,
// WB_E_DTYPE, WB_E_SHAPE; the region itself is the broker's to check.
int read_requests(const wb_tensor_spec *specs, uint32_t count, std::vector<TensorRequest> *out);
int read_requests(const wb_shard_spec *specs, uint32_t count, std::vector<TensorRequest> *out);

// The request's ShardRegion, or a null offset (none) for a plain topic's tensor.
flatbuffers::Offset<proto::ShardRegion> build_shard(flatbuffers::FlatBufferBuilder &builder, const TensorRequest &r);

// Host tensors (tensor.cpp): wb_tensor_alloc and wb_shard_alloc, once their specs are read.
int alloc_host(wb_topic *topic, const std::vector<TensorRequest> &requests);

}  // namespace wb
