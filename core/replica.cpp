#include "replica.hpp"

#include <algorithm>

namespace wb {

uint32_t replica_for_version(const shm::Tensor &root, uint64_t version) {
  uint32_t best = 0;
  uint64_t best_version = 0;
  for (uint32_t r = 0; r < WB_MAX_REPLICAS; ++r) {
    uint64_t word = root.replica_version[r].load(std::memory_order_acquire);
    if (word == shm::kNeverWritten) continue;
    uint64_t v = word & ~shm::kWritingBit;
    if (v <= version && v >= best_version) {
      best = r;
      best_version = v;
    }
  }
  return best;
}

bool leases_block(const std::vector<uint64_t> &leased, uint64_t latest, uint32_t replicas) {
  if (replicas == 1) return !leased.empty() && leased.front() <= latest;
  auto older = std::count_if(leased.begin(), leased.end(), [latest](uint64_t v) { return v < latest; });
  return older > int64_t(replicas) - 2;
}

}  // namespace wb
