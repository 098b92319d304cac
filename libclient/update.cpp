// The publisher's side of a version: begin (wait for leases), hand out replicas to write, publish atomically.
//
// Replicas per tensor: each replica records which version's bytes it holds (replica_version). A version v reads,
// for each tensor, the replica with the newest write not after v. Readers may acquire versions in
// [floor, latest]. Begin raises floor to the latest (R >= 2) or past it (R = 1), then scans leases:
//   R = 1  writes in place, so it waits until no lease of a published version remains (new acquires wait for
//          the publish; an arm's lease of the version being begun, wb_plan_arm, reads nothing until then).
//   R >= 2 never writes a tensor's newest replica; an older replica is free when no leased version reads it.
//          With at most R - 2 distinct leased versions older than the latest, every tensor has a free one,
//          so begin waits only while more than R - 2 are pinned.
// Publish stores replica_version for the changed tensors only (O(k)), then the version record, then latest.
//
// A rank of a sharded topic (docs/sharded-models.md, "Versions") does the same for its shards, with three
// differences: its begin waits until the layout is complete and the previous version is committed (lockstep),
// and raises the floor only; its publish stores its shards' versions, rank 0 also the record's body, then the
// rank's published (its point of no return), then commits the version if every rank has published it (the last
// one's call does: topic_state::commit_rank_version), and tells the broker, which commits it for a rank that
// died in between.
#include <algorithm>
#include <cstring>
#include <memory>

#include "arms.hpp"
#include "atomic_bytes.hpp"
#include "client.hpp"
#include "clock.hpp"
#include "cuda/hooks.hpp"
#include "error.hpp"
#include "futex.hpp"
#include "lease.hpp"
#include "replica.hpp"
#include "scope_exit.hpp"
#include "shard_chain.hpp"
#include "sleep.hpp"
#include "storage.hpp"
#include "struct_size.hpp"
#include "tensor_info.hpp"
#include "topic.hpp"
#include "topic_state.hpp"
#include "update.hpp"

namespace wb {

namespace {

// Waits until leases let version latest+1 be written. On success *pinned holds the leased versions older than
// the latest (which the update must not overwrite).
int wait_for_leases(wb_topic *topic, uint64_t latest, const Deadline &deadline, int64_t timeout_ms,
                    std::vector<uint64_t> *pinned) {
  shm::Topic &entry = *topic->entry;
  for (;;) {
    uint32_t seq = entry.release_seq.load(std::memory_order_seq_cst);
    std::vector<uint64_t> leased = lease::leased_versions(topic->client->seg, topic->slot);
    if (!leases_block(leased, latest, entry.replicas)) {
      pinned->clear();
      std::copy_if(leased.begin(), leased.end(), std::back_inserter(*pinned), [latest](uint64_t v) { return v < latest; });
      return WB_OK;
    }
    cuda::sweep(topic->client);  // a waiter blocked here still drops revoked CUDA imports, once per slice
    int rc = sleep_on(topic->client->connection, &entry.release_seq, &entry.release_waiters, seq,
                      deadline.remaining_ns());
    if (rc == WB_E_TIMEOUT) {
      // Arms (leases above the latest) keep no begin waiting: the message names the published versions leased.
      auto published = std::count_if(leased.begin(), leased.end(), [latest](uint64_t v) { return v <= latest; });
      return fail(WB_E_TIMEOUT, "topic '%s': readers still hold leases on %lld version(s) (oldest %llu) after %lld ms",
                  entry.name, (long long)published, (unsigned long long)leased.front(), (long long)timeout_ms);
    }
    if (rc != WB_OK) return rc;
  }
}

bool pinned_in(const std::vector<uint64_t> &pinned, uint64_t from, uint64_t until) {
  auto first = std::lower_bound(pinned.begin(), pinned.end(), from);
  return first != pinned.end() && *first < until;
}

// R >= 2: a replica of root that no leased or acquirable version reads. Prefers never-written replicas, then
// the one holding the oldest version.
int choose_replica(const shm::Tensor &root, uint32_t replicas, const std::vector<uint64_t> &pinned, uint32_t *out) {
  uint64_t held[WB_MAX_REPLICAS];
  uint32_t newest = 0;
  for (uint32_t r = 0; r < replicas; ++r) {
    held[r] = root.replica_version[r].load(std::memory_order_relaxed);
    if (held[r] != shm::kNeverWritten && (held[newest] == shm::kNeverWritten || held[r] > held[newest])) newest = r;
  }
  bool found = false;
  for (uint32_t r = 0; r < replicas; ++r) {
    if (r == newest) continue;
    if (held[r] != shm::kNeverWritten) {
      uint64_t until = held[newest];  // the replica serves versions [held[r], next newer write)
      for (uint32_t o = 0; o < replicas; ++o) {
        if (held[o] != shm::kNeverWritten && held[o] > held[r] && held[o] < until) until = held[o];
      }
      if (pinned_in(pinned, held[r], until)) continue;
    }
    if (!found || held[r] == shm::kNeverWritten || (held[*out] != shm::kNeverWritten && held[r] < held[*out])) {
      *out = r;
      found = true;
    }
  }
  if (!found) return fail(WB_E_STATE, "tensor '%s': every replica is read by a leased version", root.name);
  return WB_OK;
}

// R = 1: marks the only replica as being written in place by this update. It is called once per tensor and
// update, so a mark already there was left by a writer that died or aborted (possibly with the same version
// number, as nothing was published since): this update's publish clears it from the dirty count.
void mark_in_place(wb_update *update, shm::Tensor &root) {
  uint64_t old = root.replica_version[0].load(std::memory_order_relaxed);
  if (old != shm::kNeverWritten && (old & shm::kWritingBit)) ++update->recovered_dirty;
  root.replica_version[0].store(shm::kWritingBit | update->version, std::memory_order_release);
}

void close_update(wb_update *update) {
  wb_topic *topic = update->topic;
  {
    std::lock_guard lock(topic->handles_mutex);
    topic->update = nullptr;
  }
  delete update;
}

bool sharded(const wb_topic *topic) { return topic->rank != shm::kNone; }

// This handle's Rank entry. A rank handle is made only for a rank of the topic's table (topic.cpp).
shm::Rank &my_rank(const wb_topic *topic) {
  return *topic_state::rank_entry(topic->client->seg, *topic->entry, topic->rank);
}

// The version being written, shown to readers and the broker: the rank's on a sharded topic.
void store_writing_version(wb_topic *topic, uint64_t version) {
  if (sharded(topic)) {
    my_rank(topic).writing_version.store(version, std::memory_order_seq_cst);
  } else {
    topic->entry->writing_version.store(version, std::memory_order_seq_cst);
  }
}

// The update will not be published: the topic's (or the rank's) state goes back to what readers may read.
void end_unpublished(wb_topic *topic) {
  if (sharded(topic)) {
    topic_state::end_rank_update(topic->client->seg, *topic->entry, topic->rank);
  } else {
    topic_state::end_unpublished_update(topic->client->seg, *topic->entry);
  }
}

int write_pointer(wb_update *update, uint32_t tensor_slot, uint32_t position, wb_tensor_info *out) {
  wb_topic *topic = update->topic;
  const shm::Segment &seg = topic->client->seg;
  shm::Tensor &e = seg.tensor(tensor_slot);
  if (e.is_view) return fail(WB_E_STATE, "'%s' is a view: write its parent '%s'", e.name, seg.tensor(e.root).name);
  auto known = update->replica_of.find(tensor_slot);
  bool first = known == update->replica_of.end();
  uint32_t replica = first ? 0 : known->second;
  if (first && topic->entry->replicas > 1) {
    int rc = choose_replica(e, topic->entry->replicas, update->pinned, &replica);
    if (rc != WB_OK) return rc;
  }
  // Storage first: a tensor whose storage fails (a revoked CUDA allocation) is not marked as written.
  char *base;
  int rc = replica_base(topic->client, e, replica, true, &base);
  if (rc != WB_OK) return rc;
  if (first) {
    // Recorded before it is marked, in an order that running out of memory cannot split: a tensor marked as
    // written must be published.
    update->changed.reserve(update->changed.size() + 1);
    update->replica_of.emplace(tensor_slot, replica);
    update->changed.push_back(tensor_slot);
    store_writing_version(topic, update->version);
    if (topic->entry->replicas == 1) mark_in_place(update, e);
  }
  describe_tensor(seg, tensor_slot, position, out);
  out->data = base + e.replica_offset[replica];
  return WB_OK;
}

// The record's body, its version word left 0: the caller stores it last (the publisher of a plain topic, the
// broker for a sharded one).
void write_record_body(const shm::Segment &seg, uint32_t topic_slot, uint64_t version, const void *metadata,
                       uint32_t size, uint32_t changed, uint32_t flags, uint32_t replica) {
  shm::VersionRecord &rec = seg.record(topic_slot, version);
  rec.version.store(0, std::memory_order_relaxed);
  // Release stores: a reader that sees any of them sees the version's reset above, and retries.
  rec.timestamp_ns.store(uint64_t(realtime_ns()), std::memory_order_release);
  rec.metadata_size.store(size, std::memory_order_release);
  rec.changed_count.store(changed, std::memory_order_release);
  rec.flags.store(flags, std::memory_order_release);
  rec.replica.store(replica, std::memory_order_release);
  store_bytes(rec.metadata, metadata, size);
}

void write_record(const shm::Segment &seg, uint32_t topic_slot, uint64_t version, const void *metadata,
                  uint32_t size, uint32_t changed, uint32_t flags, uint32_t replica) {
  write_record_body(seg, topic_slot, version, metadata, size, changed, flags, replica);
  seg.record(topic_slot, version).version.store(version, std::memory_order_release);
}

// A rank's begin: seals its layout if this handle has not, then waits until every rank has sealed and the
// version this rank published last is committed. *latest receives the committed version the update follows.
int await_rank_turn(wb_topic *topic, const Deadline &deadline, int64_t timeout_ms, uint64_t *latest) {
  shm::Topic &entry = *topic->entry;
  if (int rc = seal_rank(topic); rc != WB_OK) return rc;
  const shm::Segment &seg = topic->client->seg;
  if (topic_state::rank_entry(seg, entry, topic->rank) == nullptr) {
    return fail(WB_E_PROTOCOL, "model '%s' names rank entries %u.. beyond the rank table", entry.name,
                entry.first_rank);
  }
  const shm::Rank &me = my_rank(topic);
  for (;;) {
    uint32_t seq = entry.version_seq.load(std::memory_order_seq_cst);
    if (int rc = check_topic_live(topic); rc != WB_OK) return rc;
    *latest = entry.latest.load(std::memory_order_seq_cst);
    bool complete = entry.layout_complete.load(std::memory_order_seq_cst) != 0;
    if (complete && *latest >= me.published.load(std::memory_order_seq_cst)) return WB_OK;
    int rc = sleep_on(topic->client->connection, &entry.version_seq, &entry.version_waiters, seq,
                      deadline.remaining_ns());
    if (rc == WB_E_TIMEOUT && !complete) {
      return fail(WB_E_TIMEOUT, "model '%s': rank %u cannot begin: after %lld ms rank(s) %s have not sealed their "
                  "layout", entry.name, topic->rank, (long long)timeout_ms,
                  topic_state::unsealed_ranks(seg, entry).c_str());
    }
    if (rc == WB_E_TIMEOUT) {
      return fail(WB_E_TIMEOUT, "model '%s': version %llu waits for rank(s) %s: rank %u cannot begin %llu after "
                  "%lld ms", entry.name, (unsigned long long)(*latest + 1),
                  topic_state::lagging_ranks(seg, entry, true).c_str(), topic->rank,
                  (unsigned long long)(*latest + 2), (long long)timeout_ms);
    }
    if (rc != WB_OK) return rc;
  }
}

// Stores version n into the replica word of each tensor (or shard) the update changed, and returns the replica
// they all went into, if one (else kNone): one pass over them, on the publish's path.
uint32_t store_replica_words(wb_update *update, uint64_t n) {
  const shm::Segment &seg = update->topic->client->seg;
  uint32_t one = shm::kNone;
  bool several = false;
  for (uint32_t slot : update->changed) {
    uint32_t replica = update->replica_of[slot];
    seg.tensor(slot).replica_version[replica].store(n, std::memory_order_release);
    several = several || (one != shm::kNone && replica != one);
    one = replica;
  }
  return several ? shm::kNone : one;
}

// A sharded R >= 2 rank's replica_of_version word for the update's version: `replica` for every shard of the
// rank if the update wrote them all into it (store_replica_words' one).
uint64_t rank_word(const wb_update *update, const shm::Rank &me, uint32_t replica) {
  bool all = update->changed.size() == me.shards.load(std::memory_order_acquire);
  return all && replica != shm::kNone ? rank_replica_word(update->version, replica) : rank_mixed_word(update->version);
}

// The tensors of the publisher's topic that are not views, counted again only when the topic gained entries.
uint32_t root_count(wb_topic *topic) {
  const shm::Segment &seg = topic->client->seg;
  const shm::Topic &t = *topic->entry;
  uint32_t count = t.tensor_count.load(std::memory_order_acquire);
  if (count == topic->roots_at) return topic->roots;
  uint32_t roots = 0, i = count > 0 ? t.first_tensor : shm::kNone;
  for (uint32_t n = 0; n < count && i < seg.caps().max_tensors; ++n) {
    roots += seg.tensor(i).is_view == 0;
    i = seg.tensor(i).next.load(std::memory_order_acquire);
  }
  topic->roots = roots;
  topic->roots_at = count;
  return roots;
}

// A plain R >= 2 topic's VersionRecord::replica for the update's version: 1 + `replica` if the update wrote
// every tensor of the topic into it (store_replica_words' one), else 0.
uint32_t record_replica(wb_update *update, uint32_t replica) {
  if (update->topic->entry->replicas == 1) return 0;
  bool all = update->changed.size() == root_count(update->topic);
  return all && replica != shm::kNone ? replica + 1 : 0;
}

// Claims the GPU arms of the update's version n of a plain topic (core/arms.hpp) and lets their copies go: at
// once when its bytes are there, from the stream after its GPU work when it was published on one with a GPU
// word. A version ordered by interprocess events claims none: their readers withdraw them and copy as without.
// `replica` is the version's record_replica.
void release_arms(wb_update *update, uint64_t n, uint32_t replica) {
  wb_topic *topic = update->topic;
  const shm::Segment &seg = topic->client->seg;
  bool on_stream = update->record_flags & shm::kRecordOnStream;
  if (on_stream && !(update->record_flags & shm::kRecordGpuWord)) return;
  auto fits = [&](uint32_t armed) {
    return topic->entry->replicas == 1 ? armed == shm::kNone : replica != 0 && armed == replica - 1;
  };
  arms::claim(seg, topic->slot, n, shm::allocations_epoch(seg), fits, [&](shm::ArmSlot &slot, uint64_t token) {
    if (on_stream) return cuda::write_arm_word(topic->client, update->stream, slot.word, token);
    slot.word.store(token, std::memory_order_release);
  });
}

// Publish on a rank: its shards, rank 0 the record's body (marked pending: the commit claims it), then its
// published word; then the commit, which only the last rank's call finds complete (or the broker, for a rank
// that died between the two).
int publish_rank(wb_update *update, const void *metadata, uint32_t metadata_size, uint64_t *version) {
  wb_topic *topic = update->topic;
  const shm::Segment &seg = topic->client->seg;
  shm::Topic &entry = *topic->entry;
  shm::Rank &me = my_rank(topic);
  uint64_t n = update->version;
  // The broker's notice is made first: once the rank's part is out, nothing may fail.
  flatbuffers::FlatBufferBuilder builder;
  auto body = proto::CreateRankPublished(builder, topic->slot, n);
  uint32_t replica = store_replica_words(update, n);
  if (entry.replicas > 1) {
    me.replica_of_version[n % shm::kRankVersionsKept].store(rank_word(update, me, replica),
                                                             std::memory_order_release);
  }
  if (topic->rank == 0) {
    write_record_body(seg, topic->slot, n, metadata, metadata_size, 0, update->record_flags, 0);
    seg.record(topic->slot, n).version.store(shm::kRecordPending | n, std::memory_order_release);
  }
  crash_point(topic->client->crash_seam, CrashPoint::kRankBeforePublished);
  if (update->recovered_dirty > 0) {
    me.dirty_tensors.fetch_sub(update->recovered_dirty, std::memory_order_seq_cst);
    entry.dirty_tensors.fetch_sub(update->recovered_dirty, std::memory_order_seq_cst);
  }
  me.changed.store(uint32_t(update->changed.size()), std::memory_order_release);
  me.published_ns.store(uint64_t(realtime_ns()), std::memory_order_relaxed);
  me.published.store(n, std::memory_order_seq_cst);
  me.writing_version.store(0, std::memory_order_seq_cst);
  crash_point(topic->client->crash_seam, CrashPoint::kRankAfterPublished);
  topic_state::commit_rank_version(seg, entry, topic->slot);
  close_update(update);
  if (version != nullptr) *version = n;
  // The broker commits what a rank that died here left complete, and tells notify-fd subscribers.
  catching(__func__,
           [&] { return topic->client->connection.post(builder, proto::Body::RankPublished, body.Union()); });
  return WB_OK;
}

}  // namespace

int check_rank_metadata(const wb_topic *topic, uint32_t metadata_size) {
  if (!sharded(topic) || topic->rank == 0 || metadata_size == 0) return WB_OK;
  return fail(WB_E_INVAL, "model '%s': metadata is rank 0's; rank %u publishes none (pass NULL, 0)",
              topic->entry->name, topic->rank);
}

int write_tensor(wb_update *update, uint32_t tensor_slot, uint32_t position, uint32_t index, wb_tensor_info *out) {
  wb_topic *topic = update->topic;
  if (!sharded(topic)) {
    if (index == 0) return write_pointer(update, tensor_slot, position, out);
    return fail(WB_E_NOT_FOUND, "topic '%s' is not sharded: tensor '%s' is its only shard (index 0)",
                topic->entry->name, topic->client->seg.tensor(tensor_slot).name);
  }
  uint32_t shard_slot;
  int rc = find_shard(topic->client->seg, tensor_slot, topic->rank, index, &shard_slot);
  if (rc != WB_OK) return rc;
  return write_pointer(update, shard_slot, position, out);
}

void abort_update(wb_update *update) {
  end_unpublished(update->topic);
  close_update(update);
}

}  // namespace wb

using namespace wb;

extern "C" WB_API int wb_update_begin(wb_topic *topic, int64_t timeout_ms, wb_update **out) try {
  if (topic == nullptr || out == nullptr) return fail(WB_E_INVAL, "topic or out is NULL");
  *out = nullptr;
  if (!topic->publisher && !sharded(topic)) {
    return fail(WB_E_ROLE, "only the publisher of '%s' may begin an update", topic->entry->name);
  }
  shm::Topic &entry = *topic->entry;
  auto update = std::make_unique<wb_update>();
  {
    std::lock_guard lock(topic->handles_mutex);
    if (topic->update != nullptr || topic->update_reserved) {
      return fail(WB_E_STATE, "an update of '%s' is already open", entry.name);
    }
    topic->update_reserved = true;  // while we wait for leases
  }
  // Each step is undone on every way out (running out of memory included) until the update is open.
  ScopeExit release_slot([topic] {
    std::lock_guard lock(topic->handles_mutex);
    topic->update_reserved = false;
  });
  Deadline deadline(timeout_ms);  // for a successor broker, if the broker is gone, and then for leases
  if (int rc = topic->client->connection.await_broker(deadline); rc != WB_OK) {
    return rc == WB_E_TIMEOUT ? fail(rc, "topic '%s': %s", entry.name, wb_last_error()) : rc;
  }
  uint64_t latest = entry.latest.load(std::memory_order_seq_cst);
  if (sharded(topic)) {
    if (int rc = await_rank_turn(topic, deadline, timeout_ms, &latest); rc != WB_OK) return rc;
  }
  if (latest >= WB_VERSION_MAX) return fail(WB_E_NOSPC, "topic '%s' reached the last version number", entry.name);
  uint64_t floor = entry.replicas == 1 ? latest + 1 : latest;
  if (sharded(topic)) {
    topic_state::raise_floor(entry, floor);
  } else {
    entry.floor.store(floor, std::memory_order_seq_cst);
  }
  ScopeExit lower_floor([topic] { end_unpublished(topic); });
  if (int rc = wait_for_leases(topic, latest, deadline, timeout_ms, &update->pinned); rc != WB_OK) return rc;
  lower_floor.release();
  if (sharded(topic)) my_rank(topic).begin_ns.store(uint64_t(realtime_ns()), std::memory_order_relaxed);
  update->topic = topic;
  update->version = latest + 1;
  release_slot.release();
  std::lock_guard lock(topic->handles_mutex);
  topic->update_reserved = false;
  topic->update = *out = update.release();
  return WB_OK;
} catch (...) {
  return wb::abi_error(__func__);
}

extern "C" WB_API int wb_update_version(const wb_update *update, uint64_t *version) try {
  if (update == nullptr || version == nullptr) return fail(WB_E_INVAL, "update or version is NULL");
  *version = update->version;
  return WB_OK;
} catch (...) {
  return wb::abi_error(__func__);
}

extern "C" WB_API int wb_update_set_version(wb_update *update, uint64_t version) try {
  if (update == nullptr) return fail(WB_E_INVAL, "update is NULL");
  const shm::Topic &entry = *update->topic->entry;
  if (sharded(update->topic)) {
    return fail(WB_E_STATE, "model '%s' is sharded over %u ranks: its versions follow one another, every rank "
                "publishing each", entry.name, entry.ranks);
  }
  // writing_version and the R = 1 in-place marks carry the number from the first tensor handed out on.
  if (!update->changed.empty()) {
    return fail(WB_E_STATE, "topic '%s': the update already handed out %zu tensor(s) as version %llu", entry.name,
                update->changed.size(), (unsigned long long)update->version);
  }
  if (version > WB_VERSION_MAX) return fail(WB_E_INVAL, "version %llu is over WB_VERSION_MAX", (unsigned long long)version);
  uint64_t latest = entry.latest.load(std::memory_order_seq_cst);
  if (version <= latest) {
    return fail(WB_E_INVAL, "topic '%s': version %llu is not after the latest, %llu", entry.name,
                (unsigned long long)version, (unsigned long long)latest);
  }
  update->version = version;
  return WB_OK;
} catch (...) {
  return wb::abi_error(__func__);
}

extern "C" WB_API int wb_update_tensor(wb_update *update, const char *name, wb_tensor_info *out) try {
  if (update == nullptr || out == nullptr) return fail(WB_E_INVAL, "update or out is NULL");
  int rc = check_struct_size(out->struct_size, sizeof(wb_tensor_info), "wb_tensor_info");
  uint32_t tensor_slot, position;
  if (rc != WB_OK || (rc = update->topic->tensors.find(name, &tensor_slot, &position)) != WB_OK) return rc;
  return write_tensor(update, tensor_slot, position, 0, out);
} catch (...) {
  return wb::abi_error(__func__);
}

extern "C" WB_API int wb_update_tensor_at(wb_update *update, uint32_t position, wb_tensor_info *out) try {
  if (update == nullptr || out == nullptr) return fail(WB_E_INVAL, "update or out is NULL");
  int rc = check_struct_size(out->struct_size, sizeof(wb_tensor_info), "wb_tensor_info");
  uint32_t tensor_slot;
  if (rc != WB_OK || (rc = update->topic->tensors.at(position, &tensor_slot)) != WB_OK) return rc;
  return write_tensor(update, tensor_slot, position, 0, out);
} catch (...) {
  return wb::abi_error(__func__);
}

extern "C" WB_API int wb_update_publish(wb_update *update, const void *metadata, uint32_t metadata_size,
                                        uint64_t *version) try {
  if (update == nullptr) return fail(WB_E_INVAL, "update is NULL");
  if (metadata == nullptr && metadata_size > 0) return fail(WB_E_INVAL, "metadata is NULL but its size is %u", metadata_size);
  if (metadata_size > WB_METADATA_MAX) {
    return fail(WB_E_SIZE, "metadata is %u bytes, over the limit of %d", metadata_size, WB_METADATA_MAX);
  }
  wb_topic *topic = update->topic;
  if (sharded(topic)) {
    if (int rc = check_rank_metadata(topic, metadata_size); rc != WB_OK) return rc;
    return publish_rank(update, metadata, metadata_size, version);
  }
  shm::Topic &entry = *topic->entry;
  const shm::Segment &seg = topic->client->seg;
  uint64_t n = update->version;
  // The broker's notice for the notify-fd subscribers is made first: once the version is out, nothing may fail.
  flatbuffers::FlatBufferBuilder builder;
  auto body = proto::CreatePublished(builder, topic->slot, n);
  uint32_t replica = store_replica_words(update, n);
  crash_point(topic->client->crash_seam, CrashPoint::kPublishAfterReplicas);
  uint32_t all_in = record_replica(update, replica);
  write_record(seg, topic->slot, n, metadata, metadata_size, uint32_t(update->changed.size()), update->record_flags,
               all_in);
  if (update->recovered_dirty > 0) entry.dirty_tensors.fetch_sub(update->recovered_dirty, std::memory_order_seq_cst);
  entry.latest.store(n, std::memory_order_seq_cst);
  entry.writing_version.store(0, std::memory_order_seq_cst);
  seg.header().publishes.fetch_add(1, std::memory_order_relaxed);
  release_arms(update, n, all_in);  // before the wake: a reader woken first would withdraw its arm
  bump_and_wake(&entry.version_seq, &entry.version_waiters);
  close_update(update);
  if (version != nullptr) *version = n;
  // The notify-fd subscribers are woken by the broker; the version is already visible to everyone else.
  if (entry.notify_subscribers.load(std::memory_order_seq_cst) == 0) return WB_OK;
  // Only resuming with a successor broker may run out of memory here: the version is out and the call
  // succeeds. The subscribers' pipes ended with the dead broker: they subscribe again and find it.
  catching(__func__, [&] { return topic->client->connection.post(builder, proto::Body::Published, body.Union()); });
  return WB_OK;
} catch (...) {
  return wb::abi_error(__func__);
}

extern "C" WB_API int wb_update_abort(wb_update *update) try {
  if (update == nullptr) return fail(WB_E_INVAL, "update is NULL");
  abort_update(update);
  return WB_OK;
} catch (...) {
  return wb::abi_error(__func__);
}
