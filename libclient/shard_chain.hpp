// A sharded topic's shards, found from their logical tensor (shard_chain.cpp): the chain the broker grows from
// the logical entry (first_shard, next_shard, published by shard_count).
#pragma once

#include <cstdint>

#include "layout.hpp"

namespace wb {

// The registry slot of shard number `index` (in its rank's registration order) that rank `rank` holds of the
// logical tensor in slot logical_slot. WB_E_NOT_FOUND ("rank 1 holds no shard of 'x'") when it holds none.
int find_shard(const shm::Segment &seg, uint32_t logical_slot, uint32_t rank, uint32_t index, uint32_t *slot);

}  // namespace wb
