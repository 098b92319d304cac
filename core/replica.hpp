// The replica rules, as pure functions of replica and leased versions (unit-tested in tests/versions/ and
// tests/leases/): which replica a version reads, and whether leases leave a replica free for the next version.
#pragma once

#include <cstdint>
#include <vector>

#include "layout.hpp"

namespace wb {

// Replica holding tensor (root) t's bytes as of version: the one with the newest write not after it (a write in
// place, kWritingBit, counts as its version; of equal ones the last). Replica 0 when every write is newer.
uint32_t replica_for_version(const shm::Tensor &root, uint64_t version);

// Rank::replica_of_version's word for `version`, stored at version % kRankVersionsKept before the rank publishes
// it: the version, and in the low 3 bits the replica that holds every one of the rank's shards plus 1, or 0
// when the version left some shard unchanged or wrote them into several replicas (rank_mixed_word).
inline uint64_t rank_replica_word(uint64_t version, uint32_t replica) { return version << 3 | (replica + 1); }
inline uint64_t rank_mixed_word(uint64_t version) { return version << 3; }

// The replica that a rank's word says holds every shard of the rank for `version`, or kNone when the word says
// nothing of that version (another's, a mixed one, or none yet).
inline uint32_t rank_replica_of(uint64_t word, uint64_t version) {
  return (word >> 3) == version && (word & 7) != 0 ? uint32_t(word & 7) - 1 : shm::kNone;
}

// Whether the leased versions (ascending, distinct) keep a publisher from beginning the version after latest on
// a topic of `replicas` replicas: with R = 1 a lease of a published version does (it writes in place); a lease
// above the latest is an arm of the version being begun (wb_plan_arm), which reads nothing until it is
// published, so it must not keep it from being written. With R >= 2 more than R - 2 leased versions older than
// the latest do, as each pins a replica besides the latest's.
bool leases_block(const std::vector<uint64_t> &leased, uint64_t latest, uint32_t replicas);

}  // namespace wb
