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

// Whether the leased versions (ascending, distinct) keep a publisher from beginning the version after latest on
// a topic of `replicas` replicas: with R = 1 any lease does (it writes in place); with R >= 2 more than R - 2
// leased versions older than the latest do, as each pins a replica besides the latest's.
bool leases_block(const std::vector<uint64_t> &leased, uint64_t latest, uint32_t replicas);

}  // namespace wb
