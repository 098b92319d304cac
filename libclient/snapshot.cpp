// The reader's side: lease a version, read its metadata, look its tensors up, release.
#include <algorithm>
#include <cstring>
#include <memory>
#include <string>

#include "atomic_bytes.hpp"
#include "client.hpp"
#include "clock.hpp"
#include "cuda/hooks.hpp"
#include "error.hpp"
#include "lease.hpp"
#include "replica.hpp"
#include "set_node.hpp"
#include "sleep.hpp"
#include "snapshot.hpp"
#include "storage.hpp"
#include "struct_size.hpp"
#include "tensor_info.hpp"
#include "topic.hpp"
#include "topic_state.hpp"

namespace wb {

bool read_record(const shm::Segment &seg, uint32_t topic_slot, uint64_t version, wb_snapshot *snapshot) {
  const shm::VersionRecord &rec = seg.record(topic_slot, version);
  if (rec.version.load(std::memory_order_acquire) != version) return false;
  // Acquire loads: the version's re-check below cannot move before any of them.
  uint32_t size = std::min<uint32_t>(rec.metadata_size.load(std::memory_order_acquire), WB_METADATA_MAX);
  snapshot->timestamp_ns = rec.timestamp_ns.load(std::memory_order_acquire);
  snapshot->metadata.resize(size);
  load_bytes(snapshot->metadata.data(), rec.metadata, size);
  snapshot->record_flags = rec.flags.load(std::memory_order_acquire);
  snapshot->record_replica = rec.replica.load(std::memory_order_acquire);
  return rec.version.load(std::memory_order_relaxed) == version;
}

namespace {

// Sharded: "rank 1 (2 shards), rank 3 (1 shard)", the ranks whose shards are left half-written.
std::string dirty_ranks(const shm::Segment &seg, const shm::Topic &entry) {
  std::string out;
  for (uint32_t k = 0; k < entry.ranks; ++k) {
    const shm::Rank *r = topic_state::rank_entry(seg, entry, k);
    uint32_t dirty = r != nullptr ? r->dirty_tensors.load(std::memory_order_seq_cst) : 0;
    if (dirty == 0) continue;
    if (!out.empty()) out += ", ";
    out += "rank " + std::to_string(k) + " (" + std::to_string(dirty) + (dirty == 1 ? " shard)" : " shards)");
  }
  return out;
}

}  // namespace

int dirty_error(const shm::Segment &seg, const shm::Topic &entry) {
  if (entry.ranks > 0) {
    return fail(WB_E_DIRTY, "model '%s': %s left half-written in place by a publisher that died or aborted; "
                "readable again when the rank publishes them in a new version", entry.name,
                dirty_ranks(seg, entry).c_str());
  }
  return fail(WB_E_DIRTY, "topic '%s': %u tensor(s) were left half-written in place by a publisher that died or "
              "aborted; they become readable when a publisher writes them in a new version",
              entry.name, entry.dirty_tensors.load());
}

namespace {

// One attempt to lease version v. WB_OK with the snapshot filled, WB_E_EXPIRED/WB_E_DIRTY, or WB_E_BUSY when the
// latest was asked for and is not acquirable right now (the caller waits for the next publish).
int try_lease(wb_topic *topic, uint64_t v, bool explicit_version, wb_snapshot *snapshot) {
  wb_client *client = topic->client;
  shm::Topic &entry = *topic->entry;
  uint32_t slot;
  int rc = client->leases.take(&slot);
  if (rc != WB_OK) return rc;
  client->leases.hold(slot, topic->slot, v);
  // The state after the lease word: the other half of Registry::remove_topic's Dekker handshake.
  if (int rc = check_topic_live(topic); rc != WB_OK) {
    client->leases.drop(entry, slot);
    return rc;
  }
  uint64_t floor = entry.floor.load(std::memory_order_seq_cst);
  bool dirty = entry.dirty_tensors.load(std::memory_order_seq_cst) > 0;
  if (v >= floor && !dirty && read_record(client->seg, topic->slot, v, snapshot)) {
    snapshot->version = v;
    snapshot->lease_slot = slot;
    return WB_OK;
  }
  client->leases.drop(entry, slot);
  if (dirty) return dirty_error(client->seg, entry);
  if (explicit_version) {
    return fail(WB_E_EXPIRED, "topic '%s': version %llu is no longer kept (oldest kept is %llu)", entry.name,
                (unsigned long long)v, (unsigned long long)floor);
  }
  return WB_E_BUSY;  // the latest moved on, or an R = 1 update is writing it: wait for the next publish
}

void end_lease(wb_snapshot *snapshot) {
  wb_topic *topic = snapshot->topic;
  topic->client->leases.drop(*topic->entry, snapshot->lease_slot);
  std::lock_guard lock(topic->handles_mutex);
  topic->snapshots.erase(snapshot);
}

}  // namespace

int lookup_tensor(wb_snapshot *snapshot, uint32_t tensor_slot, uint32_t position, wb_tensor_info *out) {
  wb_topic *topic = snapshot->topic;
  const shm::Segment &seg = topic->client->seg;
  const shm::Tensor &e = seg.tensor(tensor_slot);
  if (e.role == uint32_t(shm::TensorRole::kLogical)) {
    return fail(WB_E_STATE, "'%s' is sharded over %u ranks: use wb_plan_create or wb_snapshot_shard", e.name,
                topic->entry->ranks);
  }
  uint32_t replica;
  char *data;
  int rc = tensor_data(snapshot, tensor_slot, &replica, &data);
  if (rc != WB_OK) return rc;
  describe_tensor(seg, tensor_slot, position, out);
  uint64_t word = seg.tensor(e.root).replica_version[replica].load(std::memory_order_acquire);
  out->version = word == shm::kNeverWritten ? 0 : word & ~shm::kWritingBit;
  out->data = data;
  return WB_OK;
}

uint64_t allocations_epoch(const wb_client *client) { return shm::allocations_epoch(client->seg); }

uint64_t snapshot_place(const wb_snapshot *snapshot) {
  const wb_topic *topic = snapshot->topic;
  // R = 1 writes every version into replica 0 of its tensors' (or shards') allocations.
  return topic->entry->replicas == 1 ? allocations_epoch(topic->client) : 0;
}

int replica_data(wb_client *client, uint32_t tensor_slot, uint32_t replica, char **data) {
  const shm::Segment &seg = client->seg;
  const shm::Tensor &e = seg.tensor(tensor_slot);
  const shm::Tensor &root = seg.tensor(e.root);
  char *base;
  int rc = replica_base(client, root, replica, false, &base);
  if (rc != WB_OK) return rc;
  *data = base + root.replica_offset[replica] + e.view_offset;
  return WB_OK;
}

uint32_t topic_replicas(const wb_topic *topic) {
  return std::clamp(topic->entry->replicas, 1u, uint32_t(WB_MAX_REPLICAS));
}

int version_replica(const wb_snapshot *snapshot, uint32_t replicas, uint32_t root_slot, uint32_t *replica) {
  *replica = 0;
  if (replicas == 1) return WB_OK;
  if (snapshot->record_replica != 0 && snapshot->record_replica <= replicas) {
    *replica = snapshot->record_replica - 1;
    return WB_OK;
  }
  const wb_topic *topic = snapshot->topic;
  const shm::Tensor &root = topic->client->seg.tensor(root_slot);
  *replica = replica_for_version(root, snapshot->version);
  if (*replica < replicas) return WB_OK;
  return fail(WB_E_PROTOCOL, "topic '%s' has %u replicas, yet version %llu of '%s' is in replica %u",
              topic->entry->name, replicas, (unsigned long long)snapshot->version, root.name, *replica);
}

int tensor_data(wb_snapshot *snapshot, uint32_t tensor_slot, uint32_t *replica, char **data) {
  const wb_topic *topic = snapshot->topic;
  int rc = version_replica(snapshot, topic_replicas(topic), topic->client->seg.tensor(tensor_slot).root, replica);
  if (rc != WB_OK) return rc;
  return replica_data(snapshot->topic->client, tensor_slot, *replica, data);
}

void unref_snapshot(wb_snapshot *snapshot) {
  if (snapshot->refs.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  if (snapshot->topic != nullptr) end_lease(snapshot);
  delete snapshot;
}

void orphan_snapshot(wb_snapshot *snapshot) {
  end_lease(snapshot);
  snapshot->topic = nullptr;
  if (!snapshot->handle_released.exchange(true)) unref_snapshot(snapshot);
}

}  // namespace wb

using namespace wb;

extern "C" WB_API int wb_snapshot_acquire(wb_topic *topic, uint64_t version, int64_t timeout_ms,
                                          wb_snapshot **out) try {
  if (topic == nullptr || out == nullptr) return fail(WB_E_INVAL, "topic or out is NULL");
  *out = nullptr;
  if (version > WB_VERSION_MAX) return fail(WB_E_INVAL, "version %llu is over WB_VERSION_MAX", (unsigned long long)version);
  shm::Topic &entry = *topic->entry;
  cuda::sweep(topic->client);  // drop revoked CUDA imports first, so that their exporters stop waiting
  // Everything the snapshot needs is made first: once a lease word is taken, nothing may fail for want of memory.
  auto snapshot = std::make_unique<wb_snapshot>();
  snapshot->metadata.reserve(WB_METADATA_MAX);
  auto node = set_node(snapshot.get());
  snapshot->topic = topic;
  Deadline deadline(timeout_ms);
  for (;;) {
    if (int rc = topic->client->connection.check_broker_while_waiting(); rc != WB_OK) return rc;
    uint32_t seq = entry.version_seq.load(std::memory_order_seq_cst);
    if (int rc = check_topic_live(topic); rc != WB_OK) return rc;
    uint64_t latest = entry.latest.load(std::memory_order_seq_cst);
    uint64_t v = version != 0 ? version : latest;
    if (latest == 0) return fail(WB_E_NOT_FOUND, "topic '%s' has no published version yet", entry.name);
    if (v > latest) {
      return fail(WB_E_NOT_FOUND, "topic '%s': version %llu is not published (latest is %llu)", entry.name,
                  (unsigned long long)v, (unsigned long long)latest);
    }
    int rc = try_lease(topic, v, version != 0, snapshot.get());
    if (rc == WB_OK) break;
    if (rc != WB_E_BUSY) return rc;
    cuda::sweep(topic->client);  // a reader blocked here still drops revoked CUDA imports, once per slice
    rc = sleep_on(topic->client->connection, &entry.version_seq, &entry.version_waiters, seq, deadline.remaining_ns());
    if (rc == WB_E_TIMEOUT) {
      return fail(WB_E_TIMEOUT, "topic '%s': an in-place update still holds the latest version after %lld ms%s",
                  entry.name, (long long)timeout_ms, topic_state::waiting_for(topic->client->seg, entry).c_str());
    }
    if (rc != WB_OK) return rc;
  }
  {
    std::lock_guard lock(topic->handles_mutex);
    topic->snapshots.insert(std::move(node));
  }
  *out = snapshot.release();
  return WB_OK;
} catch (...) {
  return wb::abi_error(__func__);
}

extern "C" WB_API int wb_snapshot_release(wb_snapshot *snapshot) try {
  if (snapshot == nullptr) return fail(WB_E_INVAL, "snapshot is NULL");
  snapshot->handle_released.store(true);
  unref_snapshot(snapshot);
  return WB_OK;
} catch (...) {
  return wb::abi_error(__func__);
}

extern "C" WB_API int wb_snapshot_version(const wb_snapshot *snapshot, uint64_t *version) try {
  if (snapshot == nullptr || version == nullptr) return fail(WB_E_INVAL, "snapshot or version is NULL");
  *version = snapshot->version;
  return WB_OK;
} catch (...) {
  return wb::abi_error(__func__);
}

extern "C" WB_API int wb_snapshot_metadata(const wb_snapshot *snapshot, const void **data, uint32_t *size,
                                           uint64_t *timestamp_ns) try {
  if (snapshot == nullptr || data == nullptr || size == nullptr) return fail(WB_E_INVAL, "snapshot, data or size is NULL");
  *data = snapshot->metadata.data();
  *size = uint32_t(snapshot->metadata.size());
  if (timestamp_ns != nullptr) *timestamp_ns = snapshot->timestamp_ns;
  return WB_OK;
} catch (...) {
  return wb::abi_error(__func__);
}

extern "C" WB_API int wb_snapshot_tensor(wb_snapshot *snapshot, const char *name, wb_tensor_info *out) try {
  if (snapshot == nullptr || out == nullptr) return fail(WB_E_INVAL, "snapshot or out is NULL");
  int rc = check_struct_size(out->struct_size, sizeof(wb_tensor_info), "wb_tensor_info");
  uint32_t tensor_slot, position;
  if (rc != WB_OK || (rc = snapshot->topic->tensors.find(name, &tensor_slot, &position)) != WB_OK) return rc;
  return lookup_tensor(snapshot, tensor_slot, position, out);
} catch (...) {
  return wb::abi_error(__func__);
}

extern "C" WB_API int wb_snapshot_tensors(wb_snapshot *snapshot, wb_tensor_info *out, uint32_t capacity,
                                          uint32_t *count) try {
  if (snapshot == nullptr || count == nullptr) return fail(WB_E_INVAL, "snapshot or count is NULL");
  if (out == nullptr && capacity > 0) return fail(WB_E_INVAL, "out is NULL but capacity is %u", capacity);
  // Append-only (views may still come): the positions below the count read now stay what they are.
  *count = snapshot->topic->entry->tensor_count.load(std::memory_order_acquire);
  if (out == nullptr) return WB_OK;
  uint32_t stride = out->struct_size;  // the caller's element size: a newer header's may be larger
  if (int rc = check_struct_size(stride, sizeof(wb_tensor_info), "wb_tensor_info"); rc != WB_OK) return rc;
  if (capacity < *count) {
    return fail(WB_E_SIZE, "topic '%s' has %u tensors and views, more than the capacity of %u",
                snapshot->topic->entry->name, *count, capacity);
  }
  char *at = reinterpret_cast<char *>(out);
  for (uint32_t position = 0; position < *count; ++position, at += stride) {
    auto *info = reinterpret_cast<wb_tensor_info *>(at);
    info->struct_size = stride;
    uint32_t tensor_slot = 0;
    int rc = snapshot->topic->tensors.at(position, &tensor_slot);
    if (rc == WB_OK) rc = lookup_tensor(snapshot, tensor_slot, position, info);
    if (rc != WB_OK) return rc;
  }
  return WB_OK;
} catch (...) {
  return wb::abi_error(__func__);
}

extern "C" WB_API int wb_snapshot_place(const wb_snapshot *snapshot, uint64_t *place) try {
  if (snapshot == nullptr || place == nullptr) return fail(WB_E_INVAL, "snapshot or place is NULL");
  *place = snapshot_place(snapshot);
  return WB_OK;
} catch (...) {
  return wb::abi_error(__func__);
}

extern "C" WB_API int wb_snapshot_tensor_at(wb_snapshot *snapshot, uint32_t position, wb_tensor_info *out) try {
  if (snapshot == nullptr || out == nullptr) return fail(WB_E_INVAL, "snapshot or out is NULL");
  int rc = check_struct_size(out->struct_size, sizeof(wb_tensor_info), "wb_tensor_info");
  uint32_t tensor_slot;
  if (rc != WB_OK || (rc = snapshot->topic->tensors.at(position, &tensor_slot)) != WB_OK) return rc;
  return lookup_tensor(snapshot, tensor_slot, position, out);
} catch (...) {
  return wb::abi_error(__func__);
}
