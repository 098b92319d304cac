#include "topic_state.hpp"

#include <algorithm>
#include <cstdio>

#include "arms.hpp"
#include "clock.hpp"
#include "futex.hpp"
#include "replica.hpp"

namespace wb::topic_state {

bool commit_rank_version(const shm::Segment &seg, shm::Topic &t, uint32_t topic_slot) {
  if (t.ranks == 0 || t.state.load(std::memory_order_seq_cst) != uint32_t(shm::TopicState::kLive)) return false;
  uint64_t latest = t.latest.load(std::memory_order_seq_cst);
  uint64_t version = latest + 1;
  uint32_t changed = 0;
  for (uint32_t k = 0; k < t.ranks; ++k) {
    const shm::Rank *r = rank_entry(seg, t, k);
    // Each rank stored its part (shards, rank 0 the record's body, changed) before its published, and none moves
    // on before latest reaches version: the sum below is this version's.
    if (r == nullptr || r->published.load(std::memory_order_seq_cst) != version) return false;
    changed += r->changed.load(std::memory_order_acquire);
  }
  shm::VersionRecord &rec = seg.record(topic_slot, version);
  // The claim: only rank 0's body of this very version holds kRecordPending | version, so a caller that read an
  // old latest and stalled while the ring came round again cannot claim a later version's record.
  uint64_t pending = shm::kRecordPending | version;
  if (rec.version.compare_exchange_strong(pending, version, std::memory_order_seq_cst)) {
    rec.changed_count.store(changed, std::memory_order_release);
  } else if (pending != version) {
    return false;  // not this version's record: a segment scribbled over, or a latest read long ago
  }
  // Claimed, by this call or by one that may have died since: latest moves from exactly version - 1, once.
  if (!t.latest.compare_exchange_strong(latest, version, std::memory_order_seq_cst)) return false;
  seg.header().publishes.fetch_add(1, std::memory_order_relaxed);
  // Every rank's bytes were there before its published (a rank on a stream synchronized it): the arms of this
  // version may copy now.
  auto fits = [&](uint32_t replica) {
    if (t.replicas == 1) return replica == shm::kNone;
    for (uint32_t k = 0; k < t.ranks; ++k) {
      const shm::Rank *r = rank_entry(seg, t, k);
      uint64_t word = r == nullptr ? 0 : r->replica_of_version[version % shm::kRankVersionsKept].load();
      if (rank_replica_of(word, version) != replica) return false;
    }
    return true;
  };
  arms::claim(seg, topic_slot, version, shm::allocations_epoch(seg), fits,
              [](shm::ArmSlot &slot, uint64_t token) { slot.word.store(token, std::memory_order_release); });
  bump_and_wake(&t.version_seq, &t.version_waiters);
  return true;
}

uint32_t count_dirty(const shm::Segment &seg, const shm::Topic &t) {
  uint32_t count = t.tensor_count.load(std::memory_order_acquire);
  uint32_t dirty = 0;
  uint32_t i = count > 0 ? t.first_tensor : shm::kNone;
  for (uint32_t n = 0; n < count && i < seg.caps().max_tensors; ++n) {
    const shm::Tensor &e = seg.tensor(i);
    uint64_t word = e.replica_version[0].load(std::memory_order_acquire);
    if (!e.is_view && word != shm::kNeverWritten && (word & shm::kWritingBit)) ++dirty;
    i = e.next.load(std::memory_order_acquire);
  }
  return dirty;
}

namespace {

// R >= 2: a writer that died inside wb_update_publish may have stored the replica_version of some tensors but
// not `latest`. Those replicas hold an unpublished version: left as they are, the next writer would take one
// of them for the newest and overwrite the replica that serves the latest version, and readers of its number
// (the next writer publishes it again) would read the dead writer's bytes for tensors it does not rewrite.
void forget_unpublished_replicas(const shm::Segment &seg, const shm::Topic &t, uint64_t latest) {
  uint32_t count = t.tensor_count.load(std::memory_order_acquire);
  uint32_t i = count > 0 ? t.first_tensor : shm::kNone;
  for (uint32_t n = 0; n < count && i < seg.caps().max_tensors; ++n) {
    shm::Tensor &e = seg.tensor(i);
    for (uint32_t r = 0; !e.is_view && r < t.replicas && r < WB_MAX_REPLICAS; ++r) {
      uint64_t word = e.replica_version[r].load(std::memory_order_acquire);
      if (word != shm::kNeverWritten && word > latest) e.replica_version[r].store(shm::kNeverWritten);
    }
    i = e.next.load(std::memory_order_acquire);
  }
}

}  // namespace

void end_unpublished_update(const shm::Segment &seg, shm::Topic &t) {
  uint64_t latest = t.latest.load(std::memory_order_seq_cst);
  if (t.replicas == 1) {
    t.dirty_tensors.store(count_dirty(seg, t), std::memory_order_seq_cst);
    t.floor.store(latest, std::memory_order_seq_cst);
  } else {
    forget_unpublished_replicas(seg, t, latest);
    t.floor.store(std::min(t.floor.load(), latest), std::memory_order_seq_cst);
  }
  t.writing_version.store(0, std::memory_order_seq_cst);
  bump_and_wake(&t.version_seq, &t.version_waiters);
}

shm::Rank *rank_entry(const shm::Segment &seg, const shm::Topic &t, uint32_t rank) {
  uint64_t slot = uint64_t{t.first_rank} + rank;
  if (rank >= t.ranks || slot >= seg.caps().max_ranks) return nullptr;
  return &seg.rank(uint32_t(slot));
}

void raise_floor(shm::Topic &t, uint64_t floor) {
  uint64_t old = t.floor.load(std::memory_order_seq_cst);
  while (old < floor && !t.floor.compare_exchange_weak(old, floor, std::memory_order_seq_cst)) {
  }
}

namespace {

// Calls f(shard entry) for each shard of `rank`: the logical tensors of the topic's list, each shard chain.
template <typename F>
void for_each_shard_of(const shm::Segment &seg, const shm::Topic &t, uint32_t rank, F f) {
  uint32_t count = t.tensor_count.load(std::memory_order_acquire);
  uint32_t i = count > 0 ? t.first_tensor : shm::kNone;
  for (uint32_t n = 0; n < count && i < seg.caps().max_tensors; ++n) {
    const shm::Tensor &logical = seg.tensor(i);
    uint32_t shards = logical.role == uint32_t(shm::TensorRole::kLogical)
                          ? logical.shard_count.load(std::memory_order_acquire) : 0;
    uint32_t s = shards > 0 ? logical.first_shard : shm::kNone;
    for (uint32_t k = 0; k < shards && s < seg.caps().max_tensors; ++k) {
      shm::Tensor &shard = seg.tensor(s);
      if (shard.rank == rank) f(shard);
      s = shard.next_shard.load(std::memory_order_acquire);
    }
    i = logical.next.load(std::memory_order_acquire);
  }
}

}  // namespace

void end_rank_update(const shm::Segment &seg, shm::Topic &t, uint32_t rank) {
  shm::Rank *r = rank_entry(seg, t, rank);
  if (r == nullptr) return;
  uint64_t latest = t.latest.load(std::memory_order_seq_cst);
  if (r->published.load(std::memory_order_seq_cst) <= latest) {
    if (t.replicas == 1) {
      // A shard whose word already holds the unpublished version (the rank died inside its publish) holds bytes
      // no committed version has: it is as half-written as one still marked.
      uint32_t dirty = 0;
      for_each_shard_of(seg, t, rank, [&dirty, latest](shm::Tensor &e) {
        uint64_t word = e.replica_version[0].load(std::memory_order_acquire);
        if (word == shm::kNeverWritten) return;
        if (!(word & shm::kWritingBit) && word > latest) e.replica_version[0].store(word | shm::kWritingBit);
        if ((word & shm::kWritingBit) || word > latest) ++dirty;
      });
      // The topic's count is the sum over its ranks, kept by differences: each rank's own count has one writer
      // at a time (its publisher, or the broker once it is gone), the topic's has several.
      uint32_t old = r->dirty_tensors.exchange(dirty, std::memory_order_seq_cst);
      t.dirty_tensors.fetch_add(dirty - old, std::memory_order_seq_cst);
    } else {
      uint32_t replicas = std::min<uint32_t>(t.replicas, WB_MAX_REPLICAS);
      for_each_shard_of(seg, t, rank, [latest, replicas](shm::Tensor &e) {
        for (uint32_t k = 0; k < replicas; ++k) {
          uint64_t word = e.replica_version[k].load(std::memory_order_acquire);
          if (word != shm::kNeverWritten && word > latest) e.replica_version[k].store(shm::kNeverWritten);
        }
      });
    }
  }
  r->writing_version.store(0, std::memory_order_seq_cst);
  bump_and_wake(&t.version_seq, &t.version_waiters);
}

namespace {

void append_rank(std::string *out, uint32_t rank) {
  if (!out->empty()) *out += ", ";
  *out += std::to_string(rank);
}

}  // namespace

std::string lagging_ranks(const shm::Segment &seg, const shm::Topic &t, bool details) {
  uint64_t latest = t.latest.load(std::memory_order_seq_cst);
  bool ahead = false;
  for (uint32_t k = 0; k < t.ranks && !ahead; ++k) {
    const shm::Rank *r = rank_entry(seg, t, k);
    ahead = r != nullptr && r->published.load(std::memory_order_seq_cst) > latest;
  }
  std::string out;
  for (uint32_t k = 0; ahead && k < t.ranks; ++k) {
    const shm::Rank *r = rank_entry(seg, t, k);
    if (r == nullptr) continue;
    uint64_t published = r->published.load(std::memory_order_seq_cst);
    if (published > latest) continue;
    append_rank(&out, k);
    if (!details) continue;
    char text[160];
    uint32_t pid = r->publisher.load() != 0 ? r->publisher_pid.load() : 0;
    uint64_t when = r->published_ns.load();
    double ago = when != 0 ? double(realtime_ns() - int64_t(when)) / 1e9 : 0.0;
    if (pid != 0) {
      snprintf(text, sizeof(text), " (pid %u, ", pid);
    } else {
      snprintf(text, sizeof(text), " (no publisher, ");
    }
    out += text;
    if (when != 0) {
      snprintf(text, sizeof(text), "last published %llu, %.1f s ago)", (unsigned long long)published, ago);
    } else {
      snprintf(text, sizeof(text), "never published)");
    }
    out += text;
  }
  return out;
}

std::string waiting_for(const shm::Segment &seg, const shm::Topic &t) {
  if (t.ranks == 0) return "";
  std::string lagging = lagging_ranks(seg, t, false);
  if (lagging.empty()) return "";
  return " (model version " + std::to_string(t.latest.load(std::memory_order_seq_cst) + 1) + " waits for rank(s) " +
         lagging + ")";
}

std::string unsealed_ranks(const shm::Segment &seg, const shm::Topic &t) {
  std::string out;
  for (uint32_t k = 0; k < t.ranks; ++k) {
    const shm::Rank *r = rank_entry(seg, t, k);
    if (r != nullptr && r->sealed.load(std::memory_order_acquire) == 0) append_rank(&out, k);
  }
  return out;
}

}  // namespace wb::topic_state
