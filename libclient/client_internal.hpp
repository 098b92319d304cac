// The library's private objects behind the opaque handles of weightbus.h.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "allocation_cache.hpp"
#include "clock.hpp"
#include "crash_point.hpp"
#include "layout.hpp"
#include "notify_set.hpp"
#include "protocol_generated.h"
#include "wire.hpp"

struct wb_topic;

namespace wb::cuda {
struct ClientState;
}

struct wb_client {
  int sock = -1;
  int64_t timeout_ms = 5000;
  uint32_t id = 0;  // our client slot in the segment
  void *segment_base = nullptr;
  uint64_t segment_size = 0;
  int segment_fd = -1;
  wb::shm::Segment seg;
  std::string socket_path;
  uint32_t generation = 0;  // our slot's, as a successor broker checks when we resume it (resume.cpp)

  // The broker closed our socket: since when (CLOCK_MONOTONIC), and whether its successor refused to take
  // this client back. session counts the connections this client had, so that notify fds know their broker.
  std::atomic<bool> broker_gone{false};
  std::atomic<int64_t> broker_gone_since_ns{0};
  std::atomic<bool> resume_refused{false};
  std::atomic<uint32_t> session{0};
  wb::CrashSeam crash_seam;  // tests only (crash_point.hpp)

  std::mutex request_mutex;  // one request/reply exchange at a time on the socket
  uint32_t next_request_id = 0;

  wb::AllocationCache allocations{this};

  std::mutex lease_mutex;  // which of our lease words are taken
  std::vector<bool> lease_taken;

  std::mutex topics_mutex;
  std::set<wb_topic *> topics;

  // What this client holds in CUDA (libclient/cuda/client_state.hpp): created by the first CUDA call, so that
  // clients that never use CUDA never load libcuda; destroyed at detach.
  std::mutex cuda_mutex;
  std::atomic<wb::cuda::ClientState *> cuda{nullptr};
};

struct wb_topic {
  wb_client *client = nullptr;
  uint32_t index = 0;
  bool publisher = false;
  wb::shm::Topic *entry = nullptr;

  // This process's view of the topic's tensor list, refreshed when the registry's layout_gen moves on.
  std::shared_mutex layout_mutex;
  std::atomic<uint32_t> layout_gen{UINT32_MAX};
  std::vector<uint32_t> order;  // position -> tensor table index
  std::unordered_map<std::string, uint32_t> by_name;  // name -> position

  std::mutex batch_mutex;                // guards batch_positions
  std::vector<uint32_t> batch_positions;  // key index -> position, as the last find_tensors found them

  std::mutex handles_mutex;  // guards the fields below
  std::set<wb_snapshot *> snapshots;
  wb_update *update = nullptr;
  bool update_reserved = false;  // a begin is waiting for leases

  wb::NotifySet notify;  // behind wb_topic_notify_fd (notify.cpp)
};

struct wb_update {
  wb_topic *topic = nullptr;
  uint64_t version = 0;
  std::vector<uint64_t> pinned;  // versions older than the latest still leased when the update began
  std::unordered_map<uint32_t, uint32_t> replica_of;  // tensor table index -> replica being written
  std::vector<uint32_t> changed;                      // tensor table indices, in the order handed out
  uint32_t recovered_dirty = 0;  // R = 1: tensors left half-written by a dead writer that this one rewrites
  uint32_t record_flags = 0;     // VersionRecord::flags of the version (kRecordGpuEvent: published on a stream)
};

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
};

namespace wb {

// A reply from the broker. Its buffer is made with it, before the request goes out: once the broker has acted
// on a request, receiving the answer allocates nothing. The descriptors it carried are closed with it.
struct Reply {
  Reply() { message.reserve(); }
  Reply(const Reply &) = delete;
  Reply &operator=(const Reply &) = delete;
  ~Reply() {
    wire::close_all(fds);
    wire::close_all(message.fds);
  }
  int code = 0;
  uint64_t value = 0;
  uint64_t size = 0;
  std::vector<int> fds;
  wire::Received message;  // the datagram as received
};

// A node of a std::set holding value, made ahead: inserting it later cannot fail. For the handles the library
// records once the broker or the segment has acted for them.
template <typename T>
typename std::set<T>::node_type set_node(T value) {
  std::set<T> one{value};
  return one.extract(one.begin());
}

// Sends a request whose body the caller built in builder, waits for its reply (client->timeout_ms), and
// turns a non-OK reply into fail(code, broker's message). fds travel with the request.
int request(wb_client *client, flatbuffers::FlatBufferBuilder &builder, proto::Body type,
            flatbuffers::Offset<void> body, Reply *reply, const int *fds = nullptr, int nfds = 0);

// Sends a one-way notice (no reply).
int notify(wb_client *client, flatbuffers::FlatBufferBuilder &builder, proto::Body type,
           flatbuffers::Offset<void> body);

// True once the broker closed our socket (checked without blocking).
bool broker_gone(wb_client *client);
// Records that the broker is gone (the first time: when).
void mark_broker_gone(wb_client *client);

// After the broker's death, takes this client's slot back from a successor that adopted the segment
// (resume.cpp). WB_OK when the broker lives or the client resumed, else WB_E_BROKER_GONE saying why.
int resume(wb_client *client);
// The broker lives, or the client resumed with its successor: WB_OK; else WB_E_BROKER_GONE.
inline int check_broker(wb_client *client) { return broker_gone(client) ? resume(client) : WB_OK; }
// Whether a waiter should keep waiting for a successor broker: within the client's timeout_ms of the death,
// unless a successor already refused this client or the segment is gone (a broker that exits cleanly removes
// it: nothing is left to adopt).
bool successor_may_come(wb_client *client);
// When the wait for a successor ends (CLOCK_MONOTONIC ns): timeout_ms after the death; -1 for no limit.
int64_t successor_deadline_ns(const wb_client *client);
// WB_E_BROKER_GONE saying why no successor may come; called right after resume() failed (a refusal keeps the
// message resume() gave).
int no_successor(wb_client *client);
// For calls that wait on shared memory, each time round: WB_E_BROKER_GONE once the broker is gone and no
// successor took this client back or may still come; else WB_OK (the broker lives, the client resumed, or the
// wait goes on without one).
int check_broker_while_waiting(wb_client *client);
// For blocking calls that need the broker (begin, revoke): WB_OK once it lives or the client resumed with a
// successor; WB_E_BROKER_GONE once none may come; WB_E_TIMEOUT when the deadline passes first. Sleeps between
// attempts until the successor's socket appears (outage_watch.hpp), at most a short slice.
int await_broker(wb_client *client, const Deadline &deadline);

// Connects a SOCK_SEQPACKET socket to path. WB_E_CONNECT when nobody listens, WB_E_PERM, WB_E_IO.
int connect_socket(const char *path, int *out);
// One request and its reply on sock (the caller holds request_mutex), as request() describes.
int transact(wb_client *client, int sock, flatbuffers::FlatBufferBuilder &builder, proto::Body type,
             flatbuffers::Offset<void> body, const int *fds, int nfds, Reply *reply);

// Sleeps on a topic futex word until it moves from expected, the deadline passes or the broker dies, in
// slices short enough to notice the broker's death within WB_E_BROKER_GONE's promise.
// Returns WB_OK (woken or moved), WB_E_TIMEOUT or WB_E_BROKER_GONE.
int sleep_on(wb_client *client, std::atomic<uint32_t> *word, std::atomic<uint32_t> *waiters, uint32_t expected,
             int64_t remaining_ns);

// Fills the layout part of info (everything but data) for tensor table index t at position `position`.
void describe_tensor(const shm::Segment &seg, uint32_t t, uint32_t position, wb_tensor_info *info);

// Brings topic->order/by_name up to date with the registry. Takes layout_mutex exclusively when needed.
void refresh_layout(wb_topic *topic);

// Looks up a name (or a position) in the up-to-date layout: the tensor table index via *t and its position
// via *position. WB_E_NOT_FOUND if absent.
int find_tensor(wb_topic *topic, const char *name, uint32_t *t, uint32_t *position);
int tensor_at(wb_topic *topic, uint32_t position, uint32_t *t);

// A tensor as a caller names it: by name, or by position when name is NULL.
struct TensorKey {
  const char *name = nullptr;
  uint32_t position = 0;
};

// find_tensor / tensor_at for many keys at once (wb_snapshot_copy_into's targets), under one take of the layout
// lock. A server names the same tensors every version, so a name is first compared with the tensor at the
// position that the topic's previous batch found for the same key index, and hashed only when that differs.
// Fills (*t)[i] and (*positions)[i] for keys[i]; on an error, *failed is the index of the key.
int find_tensors(wb_topic *topic, const std::vector<TensorKey> &keys, std::vector<uint32_t> *t,
                 std::vector<uint32_t> *positions, uint32_t *failed);

// wb_snapshot_tensor of the tensor found at table index t, position `position` (snapshot.cpp).
int lookup_tensor(wb_snapshot *snapshot, uint32_t t, uint32_t position, wb_tensor_info *out);

// Base address in this process of the allocation holding replica `replica` of root tensor `root`: a host
// mapping (writable or read-only) or a CUDA device address, mapped or imported on first use (storage.cpp).
// WB_E_STALE for a revoked CUDA allocation, WB_E_NO_CUDA without a driver.
int replica_base(wb_client *client, const shm::Tensor &root, uint32_t replica, bool writable, char **base);

// specs[i] of an array whose elements are specs[0].struct_size bytes apart, and its checks (name, dtype,
// shape): shared by wb_tensor_alloc and wb_tensor_alloc_cuda / wb_tensor_register_cuda.
const wb_tensor_spec &spec_at(const wb_tensor_spec *specs, uint32_t i);
int check_spec(const wb_tensor_spec &spec);

// Checks an out-struct's struct_size against the size this library writes.
int check_struct_size(uint32_t given, size_t needed, const char *type_name);

// Lease words of this client: take one (WB_E_NOSPC when full) and give one back, waking a waiting publisher.
int take_lease_slot(wb_client *client, uint32_t *slot);
void drop_lease(wb_client *client, wb_topic *topic, uint32_t slot);

// WB_E_NOT_FOUND once the topic was removed (wb_topic_remove), or while a removal checks it (then it may stay):
// a handle of a removed topic can only be closed.
int check_topic_live(const wb_topic *topic);

// Internal form of wb_update_abort, used by detach.
void abort_update(wb_update *update);

// Frees a topic handle and what only this process holds of it (its notify fds, its place in the client's
// set); allocates nothing, so that wb_detach cannot stop half-way. The caller aborted its update and let go
// of its snapshots.
void release_topic(wb_topic *topic);

// Drops one reference to a snapshot (its handle's or a DLPack export's); the last one releases it.
void unref_snapshot(wb_snapshot *snapshot);
// Detach's release: drops the lease now, even while DLPack exports live; their deleters stay safe to call.
void orphan_snapshot(wb_snapshot *snapshot);

}  // namespace wb
