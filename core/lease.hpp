// Lease words: how a reader pins a version in shared memory without asking the broker.
//
// Each client slot owns leases_per_client 64-bit words. A word is 0 when free, else (topic + 1) << 48 | version,
// so that one atomic store publishes both halves. The pin works like Dekker's algorithm with the topic's floor:
//   reader     stores its lease word, then loads floor; if the version fell below floor it backs off.
//   publisher  raises floor, then scans all lease words.
// Both sides use seq_cst, so either the reader sees the new floor or the publisher sees the lease.
#pragma once

#include <cstdint>
#include <vector>

#include "layout.hpp"

namespace wb::lease {

inline uint64_t pack(uint32_t topic, uint64_t version) { return (uint64_t{topic} + 1) << 48 | version; }
inline uint32_t topic_of(uint64_t word) { return uint32_t(word >> 48) - 1; }
inline uint64_t version_of(uint64_t word) { return word & WB_VERSION_MAX; }

// The distinct versions leased on topic by every live client, in ascending order.
std::vector<uint64_t> leased_versions(const shm::Segment &seg, uint32_t topic);

// Number of lease words on topic that live clients hold. Allocates nothing.
uint32_t count_on_topic(const shm::Segment &seg, uint32_t topic);

// Number of lease words a client holds.
uint32_t count_held(const shm::Segment &seg, uint32_t client);

}  // namespace wb::lease
