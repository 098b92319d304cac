#include "lease.hpp"

#include <algorithm>

namespace wb::lease {

namespace {

// Calls visit(version) for each lease word of a live client on topic.
template <typename Visit>
void for_each_lease_on(const shm::Segment &seg, uint32_t topic, Visit &&visit) {
  const shm::Capacities &caps = seg.caps();
  for (uint32_t c = 0; c < caps.max_clients; ++c) {
    if (seg.client(c).state.load(std::memory_order_seq_cst) != uint32_t(shm::ClientState::kLive)) continue;
    std::atomic<uint64_t> *words = seg.leases(c);
    for (uint32_t i = 0; i < caps.leases_per_client; ++i) {
      uint64_t word = words[i].load(std::memory_order_seq_cst);
      if (word != 0 && topic_of(word) == topic) visit(version_of(word));
    }
  }
}

}  // namespace

std::vector<uint64_t> leased_versions(const shm::Segment &seg, uint32_t topic) {
  std::vector<uint64_t> versions;
  for_each_lease_on(seg, topic, [&](uint64_t version) { versions.push_back(version); });
  std::sort(versions.begin(), versions.end());
  versions.erase(std::unique(versions.begin(), versions.end()), versions.end());
  return versions;
}

uint32_t count_on_topic(const shm::Segment &seg, uint32_t topic) {
  uint32_t held = 0;
  for_each_lease_on(seg, topic, [&](uint64_t) { ++held; });
  return held;
}

uint32_t count_held(const shm::Segment &seg, uint32_t client) {
  uint32_t held = 0;
  std::atomic<uint64_t> *words = seg.leases(client);
  for (uint32_t i = 0; i < seg.caps().leases_per_client; ++i) held += words[i].load() != 0;
  return held;
}

}  // namespace wb::lease
