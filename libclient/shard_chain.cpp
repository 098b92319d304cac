#include "shard_chain.hpp"

#include "error.hpp"

namespace wb {

int find_shard(const shm::Segment &seg, uint32_t logical_slot, uint32_t rank, uint32_t index, uint32_t *slot) {
  const shm::Tensor &logical = seg.tensor(logical_slot);
  uint32_t count = logical.shard_count.load(std::memory_order_acquire);
  uint32_t s = count > 0 ? logical.first_shard : shm::kNone;
  for (uint32_t n = 0; n < count && s < seg.caps().max_tensors; ++n) {
    const shm::Tensor &shard = seg.tensor(s);
    if (shard.rank == rank && shard.shard_index == index) {
      *slot = s;
      return WB_OK;
    }
    s = shard.next_shard.load(std::memory_order_acquire);
  }
  if (index == 0) return fail(WB_E_NOT_FOUND, "rank %u holds no shard of '%s'", rank, logical.name);
  return fail(WB_E_NOT_FOUND, "rank %u holds no shard %u of '%s'", rank, index, logical.name);
}

}  // namespace wb
