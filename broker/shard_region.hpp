// A request's ShardRegion (AllocTensors, RegisterTensors) as the registry takes it: read by both handlers.
#pragma once

#include "error.hpp"
#include "flat_vectors.hpp"
#include "protocol_generated.h"
#include "registry.hpp"

namespace wb::broker {

// Absent (nullptr): a plain topic's tensor, out->present stays false.
inline int read_shard(const proto::ShardRegion *region, NewShard *out) {
  if (region == nullptr) return WB_OK;
  out->present = true;
  out->logical_shape = items(region->logical_shape());
  out->offset = items(region->offset());
  out->flags = region->flags();
  size_t ndim = std::max(out->logical_shape.size(), out->offset.size());
  if (ndim > WB_MAX_DIMS) return fail(WB_E_SHAPE, "a shard region of %zu dimensions: the limit is %d", ndim, WB_MAX_DIMS);
  return WB_OK;
}

}  // namespace wb::broker
