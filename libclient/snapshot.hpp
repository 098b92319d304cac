// wb_snapshot, the handle of wb_snapshot_acquire (snapshot.cpp): a leased version of a topic.
#pragma once

#include <atomic>
#include <cstdint>
#include <vector>

#include "layout.hpp"
#include "weightbus/weightbus.h"

struct wb_client;
struct wb_topic;

struct wb_snapshot {
  // Held by the caller's handle and by each DLPack tensor exported from it (libclient/dlpack.cpp): the lease
  // ends when the last of them lets go. topic is null once wb_detach has dropped the lease under live exports.
  std::atomic<uint32_t> refs{1};
  std::atomic<bool> handle_released{false};
  wb_topic *topic = nullptr;
  uint64_t version = 0;
  uint32_t lease_slot = 0;
  uint64_t timestamp_ns = 0;
  std::vector<uint8_t> metadata;
  uint32_t record_flags = 0;  // the version record's flags, read with its metadata
  uint32_t record_replica = 0;  // and its replica: 1 + the one holding every tensor (plain R >= 2), or 0
};

namespace wb {

// Copies version's record into the snapshot (seqlock read): its metadata, flags and replica. False if the
// topic's ring slot no longer holds that version (never published, or overwritten since).
bool read_record(const shm::Segment &seg, uint32_t topic_slot, uint64_t version, wb_snapshot *snapshot);

// WB_E_DIRTY with the message naming what the topic's (or its ranks') dead or aborted publisher left half-written.
int dirty_error(const shm::Segment &seg, const shm::Topic &entry);

// wb_snapshot_tensor of the tensor in registry slot tensor_slot, at position `position` of its topic.
int lookup_tensor(wb_snapshot *snapshot, uint32_t tensor_slot, uint32_t position, wb_tensor_info *out);

// Where the bytes of the tensor (or shard) in registry slot tensor_slot are for the snapshot's version, and in
// which replica: lookup_tensor's address without the rest of the description.
int tensor_data(wb_snapshot *snapshot, uint32_t tensor_slot, uint32_t *replica, char **data);

// The topic's replica count, within 1..WB_MAX_REPLICAS whatever its entry says (a segment scribbled over):
// what indexes by replica may take it as a bound.
uint32_t topic_replicas(const wb_topic *topic);

// Which replica of the tensor (root) in registry slot root_slot holds the snapshot's version, on a topic of
// `replicas` replicas: with R = 1 the only one, where the version record names one for every tensor that one,
// else the one the tensor's replica words say. WB_E_PROTOCOL when they name one beyond the topic's (a segment
// another process of the same uid scribbled over), so that no address outside the tensor's storage is ever made.
int version_replica(const wb_snapshot *snapshot, uint32_t replicas, uint32_t root_slot, uint32_t *replica);

// Where the bytes of that tensor's replica `replica` are in this client (mapped or imported on first use): the
// same address for as long as allocations_epoch stays (an entry never changes allocation).
int replica_data(wb_client *client, uint32_t tensor_slot, uint32_t replica, char **data);

// A number that changes whenever an allocation of the segment changes state, never 0: this client maps host
// memory once and imports CUDA memory anew only after such a change, so addresses found under one epoch hold
// until it moves.
uint64_t allocations_epoch(const wb_client *client);

// wb_snapshot_place: where the snapshot's tensors (and shards) lie, as a number; 0: not known without a look.
uint64_t snapshot_place(const wb_snapshot *snapshot);

// Drops one reference to a snapshot (its handle's or a DLPack export's); the last one releases it.
void unref_snapshot(wb_snapshot *snapshot);
// Detach's release: drops the lease now, even while DLPack exports live; their deleters stay safe to call.
void orphan_snapshot(wb_snapshot *snapshot);

}  // namespace wb
