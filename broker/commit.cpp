// Sharded topics: the broker commits a version once every rank has published it, and ends a rank's version
// when its publisher leaves half-way (docs/sharded-models.md, "Versions"). The broker is single-threaded, so a
// version is committed once; the ranks' publishers store only their own Rank entries and shards, never latest.
#include "futex.hpp"
#include "registry.hpp"
#include "topic_state.hpp"

namespace wb::broker {

bool Registry::commit_if_complete(uint32_t topic) {
  if (topic >= seg_.header().topic_count.load()) return false;
  shm::Topic &t = seg_.topic(topic);
  if (t.ranks == 0 || t.state.load() != uint32_t(shm::TopicState::kLive)) return false;
  uint64_t version = t.latest.load(std::memory_order_seq_cst) + 1;
  uint32_t changed = 0;
  for (uint32_t k = 0; k < t.ranks; ++k) {
    const shm::Rank *r = topic_state::rank_entry(seg_, t, k);
    // Each rank stored its part (shards, rank 0 the record's body, changed) before its published.
    if (r == nullptr || r->published.load(std::memory_order_seq_cst) != version) return false;
    changed += r->changed.load(std::memory_order_acquire);
  }
  shm::VersionRecord &rec = seg_.record(topic, version);
  rec.changed_count.store(changed, std::memory_order_release);
  rec.version.store(version, std::memory_order_release);
  t.latest.store(version, std::memory_order_seq_cst);
  seg_.header().publishes.fetch_add(1, std::memory_order_relaxed);
  bump_and_wake(&t.version_seq, &t.version_waiters);
  return true;
}

void Registry::end_rank_version(uint32_t topic, uint32_t rank) {
  if (topic >= seg_.header().topic_count.load()) return;
  topic_state::end_rank_update(seg_, seg_.topic(topic), rank);
}

}  // namespace wb::broker
