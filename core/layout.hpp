// The shared-memory segment: the one definition of its layout, used by the broker and every client.
//
// Offsets only, no pointers: each process maps the segment at its own address. Fields that more than one
// process writes are std::atomic (lock-free, hence address-free and usable across processes). Who writes what:
//   broker     everything structural: header, topic/tensor/allocation entries, client slots, reclaim.
//   publisher  its topic's live fields (latest, floor, writing_version, futex words, event_*), its version
//              ring (with the event handles), the replica_version words of its tensors and the header's
//              publishes counter. A rank of a sharded topic: its Rank entry's live fields, the replica_version
//              words of its shards, the topic's floor (raised only) and, rank 0, the version record's body;
//              the last rank to publish a version commits it (latest), or the broker for a rank that died.
//   reader     only the lease words (and their acquire times) of its own client slot, the release futex word of a
//              topic, and the arm slots it takes (core/arms.hpp: a publisher claims them and writes their words,
//              the broker settles and frees them for the dead).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "weightbus/weightbus.h"

namespace wb::shm {

inline constexpr uint64_t kMagic = 0x31474553'53554257ull;  // "WBUSSEG1"
inline constexpr uint32_t kLayoutVersion = 11;
inline constexpr uint32_t kNone = UINT32_MAX;
inline constexpr uint64_t kNeverWritten = UINT64_MAX;        // a replica that holds no version
inline constexpr uint64_t kWritingBit = 1ull << 63;         // R = 1: replica being written in place by version
inline constexpr uint32_t kRankVersionsKept = 4;            // Rank::replica_of_version's ring
inline constexpr uint64_t kRecordPending = 1ull << 63;      // a sharded version's record, written, not committed

struct Fingerprint {
  uint32_t layout_version;
  uint32_t header_size;
  uint32_t topic_size;
  uint32_t tensor_size;
  uint32_t allocation_size;
  uint32_t client_size;
  uint32_t version_record_size;
  uint32_t max_replicas;
  uint32_t rank_size;
  bool operator==(const Fingerprint &) const = default;
};

struct Capacities {
  uint32_t max_topics;
  uint32_t max_tensors;  // tensors and views together
  uint32_t max_allocations;
  uint32_t max_clients;
  uint32_t leases_per_client;
  uint32_t ring_slots;  // version records kept per topic
  uint32_t max_ranks;   // Rank entries, over all sharded topics (each takes as many as it has ranks)
};

// The largest capacities a broker accepts (weightbusd's flags) and a client believes of a segment header: they
// keep every table offset far below 2^64, so that compute_layout cannot wrap around.
inline constexpr Capacities kCapacityLimits{65534, 16u << 20, 1u << 20, 65536, 65536, 4096, 1u << 20};

// kRemoving: the broker is checking that no lease pins the topic before it removes it (Registry::remove_topic);
// it goes back to kLive if one does. kRemoved: gone for good. A removed topic's entry, and the entries of its
// tensors and allocations, are never handed out again, so that a handle a process still holds reads a dead
// entry and never another topic's (each removal uses up its entries until the segment is made afresh).
enum class TopicState : uint32_t { kFree = 0, kLive = 1, kRemoving = 2, kRemoved = 3 };

struct Topic {
  char name[WB_NAME_MAX + 1];
  uint32_t replicas;
  std::atomic<uint32_t> state;
  std::atomic<uint32_t> tensor_count;   // entries reachable from first_tensor, in order
  uint32_t first_tensor;
  uint32_t last_tensor;                 // broker-only, to append in O(1)
  std::atomic<uint32_t> layout_gen;     // bumped when a tensor or view is added
  std::atomic<uint32_t> publisher;      // client slot + 1; 0 = none
  std::atomic<uint32_t> publisher_pid;
  std::atomic<uint64_t> bytes;
  std::atomic<uint64_t> latest;         // last published version, 0 = none
  std::atomic<uint64_t> floor;          // oldest version that may still be acquired
  std::atomic<uint64_t> writing_version;  // nonzero once an update handed out a write pointer
  std::atomic<uint32_t> dirty_tensors;  // R = 1: tensors left half-written; acquire refuses while > 0
  std::atomic<uint32_t> version_seq;    // futex: bumped on every publish and state change readers must see
  std::atomic<uint32_t> version_waiters;
  std::atomic<uint32_t> release_seq;    // futex: bumped when a lease of this topic is dropped
  std::atomic<uint32_t> release_waiters;
  std::atomic<uint32_t> notify_subscribers;  // broker-maintained: publish skips its notice to the broker at 0
  // GPU ordering (libclient/cuda/events.cpp): the publisher's interprocess events, one per ring slot, whose
  // handles live in the version records. event_epoch is a seqlock over them and the fields below: odd while
  // a writer (entered by compare-and-swap) rewrites the set, 0 before the first publish on a stream.
  // event_owner (client slot + 1, with that slot's generation; 0 once retired) is the process owning the
  // events: once its slot is gone, so are they, and readers stop waiting on them.
  // The fields under it are atomics, like those of the version records' seqlock (see VersionRecord).
  std::atomic<uint32_t> event_epoch;
  std::atomic<uint32_t> event_owner;
  std::atomic<uint32_t> event_owner_generation;
  std::atomic<uint32_t> event_device_uuid[4];  // the GPU the events were created on (16 bytes)
  // Sharded topics (docs/sharded-models.md). ranks and first_rank are written by the broker before the topic
  // is handed out and never change; publisher/publisher_pid above stay 0 (each Rank entry has its own).
  uint32_t ranks;                         // 0: a plain topic; N >= 1: sharded over N ranks
  uint32_t first_rank;                    // Rank entry of rank 0; ranks 1..N-1 follow it
  std::atomic<uint32_t> sealed_ranks;     // broker: ranks that sealed their layout
  std::atomic<uint32_t> layout_complete;  // broker: 1 once every rank sealed and the shards cover every tensor
};

// One publishing rank of a sharded topic. The broker writes topic, rank, publisher*, sealed, shards and bytes;
// the rank's publisher writes the rest. published is the rank's point of no return for a version: once it is
// stored, the rank's part of that version (its shards' replica_version words, rank 0's record body, changed)
// is final, and the version commits when every rank's published equals latest + 1 (the last rank's publish,
// else the broker: topic_state::commit_rank_version).
struct Rank {
  uint32_t topic;
  uint32_t rank;
  std::atomic<uint32_t> publisher;       // client slot + 1; 0 = none
  std::atomic<uint32_t> publisher_pid;
  std::atomic<uint32_t> sealed;          // 1 once the rank sealed its layout
  std::atomic<uint32_t> shards;          // shard entries registered by the rank
  std::atomic<uint32_t> dirty_tensors;   // R = 1: its shards left half-written (summed in Topic::dirty_tensors)
  std::atomic<uint32_t> changed;         // shards changed by version `published` (summed into its record)
  std::atomic<uint64_t> published;       // the last version this rank published, 0 = none
  std::atomic<uint64_t> writing_version; // nonzero once its update handed out a write pointer
  std::atomic<uint64_t> begin_ns;        // CLOCK_REALTIME of its last begin (weightbus stats: who lags)
  std::atomic<uint64_t> published_ns;    // CLOCK_REALTIME of its last publish
  std::atomic<uint64_t> bytes;           // storage of its shards, all replicas
  // R >= 2, for its last versions: the replica that every one of its shards was written into, so that a reader
  // reads one word for the rank instead of each shard's replica words (core/replica.hpp's rank_replica_word).
  std::atomic<uint64_t> replica_of_version[kRankVersionsKept];
};

// kPlain: a tensor of a plain topic (or a view). kLogical: a sharded topic's whole tensor, listed in the topic
// (name, dtype, logical shape) with no storage of its own. kShard: the part of a logical tensor one rank stores;
// not listed, chained from its logical entry (first_shard, next_shard), name = the logical tensor's.
enum class TensorRole : uint32_t { kPlain = 0, kLogical = 1, kShard = 2 };

struct Tensor {
  char name[WB_NAME_MAX + 1];
  uint32_t topic;
  std::atomic<uint32_t> next;  // next entry of the same topic, kNone at the end
  int32_t dtype;
  uint32_t ndim;
  int64_t shape[WB_MAX_DIMS];
  int64_t strides[WB_MAX_DIMS];
  uint64_t nbytes;
  uint32_t is_view;
  uint32_t root;         // for a view: the tensor whose storage it reads; for a tensor: itself
  uint64_t view_offset;  // for a view: bytes from the root's start
  uint32_t allocation;   // of the root
  int32_t device_type;
  uint64_t replica_offset[WB_MAX_REPLICAS];
  // The version whose bytes each replica holds (kNeverWritten if none; kWritingBit|v while v writes in place).
  std::atomic<uint64_t> replica_version[WB_MAX_REPLICAS];
  // CUDA tensors: the allocation holding each replica (registered replicas may live in different
  // allocations). Host tensors keep every replica in `allocation` and leave this zero.
  uint32_t replica_allocation[WB_MAX_REPLICAS];
  // Sharded topics (TensorRole); a plain tensor leaves them zero. The broker writes them all before it
  // publishes the entry: a logical entry's chain grows by next_shard, then shard_count (release), so a reader
  // that loads shard_count (acquire) may walk that many shards from first_shard.
  uint32_t role;                          // TensorRole
  uint32_t rank;                          // kShard: the rank storing it
  uint32_t logical;                       // kShard: its logical entry
  uint32_t shard_flags;                   // kShard: WB_SHARD_REPLICATED or 0
  uint32_t first_shard;                   // kLogical: its first shard, kNone while it has none
  std::atomic<uint32_t> shard_count;      // kLogical: shards chained from first_shard
  std::atomic<uint32_t> next_shard;       // kShard: the next shard of the same logical tensor, kNone at the end
  uint32_t shard_index;                   // kShard: its number among its rank's shards of this logical tensor
  int64_t region_offset[WB_MAX_DIMS];     // kShard: where it starts in the logical tensor; its extent is shape
};

// kCudaIpc: a legacy CUDA IPC handle of an allocation's base (cuMemAlloc, PyTorch's caching allocator);
// tensors sit at offsets from that base. kCudaVmm: cuMemCreate memory exported as POSIX fds, one per physical
// chunk mapped back to back (PyTorch's expandable segments map many); the broker keeps the fds, so the memory
// outlives its exporter.
enum class AllocationKind : uint32_t { kFree = 0, kHostShm = 1, kCudaIpc = 2, kCudaVmm = 3 };

// kLive is 0 so that host allocations, which never change state, need not set it. kPending: a VMM allocation
// whose chunks are still arriving. kRevoked: its exporter revoked it. kDead: its legacy-IPC exporter is gone.
enum class AllocationState : uint32_t { kLive = 0, kRevoked = 1, kDead = 2, kPending = 3 };

struct Allocation {
  std::atomic<uint32_t> kind;
  uint32_t topic;
  uint64_t size;
  uint32_t generation;
  uint32_t creator_pid;  // for CUDA allocations, the exporting process
  uint8_t device_uuid[16];
  // CUDA allocations. The broker writes them all; the library only reads.
  std::atomic<uint32_t> state;      // AllocationState
  std::atomic<uint32_t> importers;  // processes other than the exporter that have it open (futex word)
  uint32_t exporter_client;         // client slot of the exporter, and that slot's generation, so that the
  uint32_t exporter_generation;     // exporting process recognises its own memory and uses its own pointer
  uint64_t exporter_base;           // the allocation's start in the exporter's address space
  uint32_t chunk_count;             // kCudaVmm: physical chunks, each handed out as one fd
  uint32_t reserved;
  uint8_t ipc_handle[64];           // kCudaIpc: CUipcMemHandle of the allocation's base
};

enum class ClientState : uint32_t { kFree = 0, kLive = 1 };

struct ClientSlot {
  std::atomic<uint32_t> state;
  uint32_t pid;
  uint32_t uid;
  uint32_t generation;
  char name[32];
  std::atomic<uint32_t> topics_published;
  uint32_t reserved;
  // Followed by Capacities::leases_per_client lease words (see lease.hpp), then as many acquire times
  // (CLOCK_MONOTONIC ns, written before the lease word it belongs to), for `weightbus stats`' hold times.
};

// VersionRecord::flags. kRecordOnStream: published on a stream, its GPU work ordered by the slot's GPU word
// (kRecordGpuWord: the stream wrote the version there when the work before it was done) or else by the slot's
// interprocess event.
inline constexpr uint32_t kRecordOnStream = 1;
inline constexpr uint32_t kRecordGpuWord = 2;

// The fields under the seqlock are atomics too (stored with release and loaded with acquire, the metadata
// word by word, see atomic_bytes.hpp): a reader copies them while the publisher may be rewriting the slot, and
// only the version check afterwards tells it whether its copy is whole.
struct VersionRecord {
  // Seqlock: 0 while being written, then the version it holds. A sharded version's: kRecordPending | v once rank
  // 0 wrote its body, until its commit stores v (topic_state::commit_rank_version).
  std::atomic<uint64_t> version;
  std::atomic<uint64_t> timestamp_ns;
  std::atomic<uint32_t> metadata_size;
  std::atomic<uint32_t> changed_count;
  std::atomic<uint64_t> metadata[WB_METADATA_MAX / 8];
  std::atomic<uint32_t> flags;  // kRecordOnStream, kRecordGpuWord
  // Plain R >= 2: 1 + the replica that holds every tensor of the topic for this version, when the version wrote
  // them all into one (readers then read no tensor's replica words); 0 otherwise, and for sharded topics.
  std::atomic<uint32_t> replica;
  // The CUipcEventHandle of this ring slot's event, written under Topic::event_epoch (not the seqlock): one
  // event per slot, recorded again by each version published on a stream into the slot.
  std::atomic<uint64_t> event_handle[8];
};

struct Header {
  uint64_t magic;
  uint64_t segment_size;
  Capacities capacities;
  uint32_t broker_pid;
  uint64_t topics_offset;
  uint64_t tensors_offset;
  uint64_t allocations_offset;
  uint64_t clients_offset;
  uint64_t rings_offset;
  uint64_t client_stride;  // bytes per client slot with its lease words
  uint64_t created_ns;
  uint64_t ranks_offset;
  uint64_t gpu_words_offset;
  std::atomic<uint32_t> topic_count;       // entries [0, count) have been handed out; append-only
  std::atomic<uint32_t> tensor_count;
  std::atomic<uint32_t> allocation_count;
  std::atomic<uint32_t> rank_count;
  // Bumped after every change of an allocation's state (set_allocation_state), so that a client can tell with
  // one load that none happened since it last read them all (its import sweep, on every acquire).
  std::atomic<uint64_t> allocation_changes;
  // The broker serving the segment, for wb_broker_get_info: the names are written with the header, the version
  // and start time again by each broker that adopts the segment (with broker_pid).
  char broker_name[WB_NAME_MAX + 1];
  char segment_name[WB_NAME_MAX + 1];  // "/weightbus-<uid>-<name>", as shm_open names it
  std::atomic<uint32_t> broker_version;  // WB_VERSION of the broker
  uint32_t reserved;
  std::atomic<uint64_t> broker_started_ns;  // CLOCK_REALTIME
  // Counters since the segment was made, for monitoring (wb_broker_get_info, weightbusd --metrics); they go on
  // across adoptions. publishes: versions published (see "Who writes what"); reclaims: client slots the broker
  // freed after their connection ended or, adopted, their process exited; reclaimed_leases: the leases those
  // clients still held; adoptions: brokers that adopted the segment.
  std::atomic<uint64_t> publishes;
  std::atomic<uint64_t> reclaims;
  std::atomic<uint64_t> reclaimed_leases;
  std::atomic<uint64_t> adoptions;
  Fingerprint fingerprint;  // written last: a reader that sees it valid sees a complete header
};

// A GPU arm (core/arms.hpp): a reader's stream waits on `word` for the copies of `version` of a topic, enqueued
// before that version was published; the publisher that publishes it claims the arm and writes the arm's token
// there, or the reader withdraws it and writes the token + 1 (the copies skip). In the GPU word pages (they are
// registered with the driver as one range), kArmsPerTopic per topic.
struct ArmSlot {
  std::atomic<uint64_t> word;     // the reader's stream waits until it reaches the token (cyclic >=)
  std::atomic<uint64_t> state;    // arms::State: generation, owner and what the slot is in
  std::atomic<uint64_t> version;  // the armed version
  std::atomic<uint64_t> place;    // the allocation epoch the arm's addresses hold for (allocations_epoch)
  std::atomic<uint32_t> replica;  // the replica the arm reads (every rank's, sharded), kNone for R = 1
  uint32_t reserved;
  uint64_t reserved2;
};
inline constexpr uint32_t kArmsPerTopic = 8;

static_assert(std::atomic<uint64_t>::is_always_lock_free, "cross-process atomics must be lock-free");
static_assert(std::atomic<uint32_t>::is_always_lock_free, "cross-process atomics must be lock-free");
static_assert(WB_METADATA_MAX % sizeof(uint64_t) == 0, "metadata is stored in whole words");

constexpr Fingerprint expected_fingerprint() {
  return Fingerprint{kLayoutVersion,          sizeof(Header),       sizeof(Topic),
                     sizeof(Tensor),          sizeof(Allocation),   sizeof(ClientSlot),
                     sizeof(VersionRecord),   WB_MAX_REPLICAS,      sizeof(Rank)};
}

// expected_fingerprint() field by field, as the Attach message carries it.
inline std::vector<uint32_t> fingerprint_words() {
  Fingerprint fp = expected_fingerprint();
  const auto *words = reinterpret_cast<const uint32_t *>(&fp);
  return std::vector<uint32_t>(words, words + sizeof(fp) / sizeof(uint32_t));
}

// Byte offsets of each table for the given capacities; the broker lays the segment out with them and
// clients check that the header's offsets agree.
struct Layout {
  uint64_t topics_offset;
  uint64_t tensors_offset;
  uint64_t allocations_offset;
  uint64_t clients_offset;
  uint64_t rings_offset;
  uint64_t ranks_offset;
  uint64_t gpu_words_offset;
  uint64_t client_stride;
  uint64_t segment_size;
};

Layout compute_layout(const Capacities &caps);

// Typed access into a mapped segment. Cheap to copy; slots are checked by the callers that take them from
// untrusted input.
class Segment {
 public:
  Segment() = default;
  explicit Segment(void *base) : base_(static_cast<char *>(base)) {}

  Header &header() const { return *reinterpret_cast<Header *>(base_); }
  const Capacities &caps() const { return header().capacities; }
  Topic &topic(uint32_t i) const { return at<Topic>(header().topics_offset, i, sizeof(Topic)); }
  Tensor &tensor(uint32_t i) const { return at<Tensor>(header().tensors_offset, i, sizeof(Tensor)); }
  Allocation &allocation(uint32_t i) const {
    return at<Allocation>(header().allocations_offset, i, sizeof(Allocation));
  }
  ClientSlot &client(uint32_t i) const {
    return at<ClientSlot>(header().clients_offset, i, header().client_stride);
  }
  std::atomic<uint64_t> *leases(uint32_t client_slot) const {
    return reinterpret_cast<std::atomic<uint64_t> *>(&client(client_slot) + 1);
  }
  std::atomic<uint64_t> *lease_times(uint32_t client_slot) const {
    return leases(client_slot) + caps().leases_per_client;
  }
  Rank &rank(uint32_t i) const { return at<Rank>(header().ranks_offset, i, sizeof(Rank)); }
  VersionRecord &record(uint32_t topic_slot, uint64_t version) const {
    uint64_t ring_slot = uint64_t{topic_slot} * caps().ring_slots + version % caps().ring_slots;
    return at<VersionRecord>(header().rings_offset, 0, 0, ring_slot * sizeof(VersionRecord));
  }
  // The GPU word of a topic's ring slot: the last version published on a stream into the slot whose GPU work
  // is done, written by the publisher's stream (cuStreamWriteValue64) and waited on by readers' streams
  // (cuStreamWaitValue64, cyclic >=); the broker writes it when a publisher dies. The table is pages of its
  // own, so that processes can register it with the driver alone.
  std::atomic<uint64_t> &gpu_word(uint32_t topic_slot, uint64_t version) const {
    uint64_t ring_slot = uint64_t{topic_slot} * caps().ring_slots + version % caps().ring_slots;
    return at<std::atomic<uint64_t>>(header().gpu_words_offset, ring_slot, sizeof(uint64_t));
  }
  std::atomic<uint64_t> *gpu_words() const {
    return reinterpret_cast<std::atomic<uint64_t> *>(base_ + header().gpu_words_offset);
  }
  uint64_t gpu_words_size() const { return header().segment_size - header().gpu_words_offset; }
  // Arm slot i (< kArmsPerTopic) of a topic: after the GPU words, in the same registered pages.
  ArmSlot &arm(uint32_t topic_slot, uint32_t i) const {
    return at<ArmSlot>(arms_offset(caps()), uint64_t{topic_slot} * kArmsPerTopic + i, sizeof(ArmSlot),
                       header().gpu_words_offset);
  }
  // Where the arm table starts, from the GPU words' offset.
  static uint64_t arms_offset(const Capacities &caps) {
    return (uint64_t{caps.max_topics} * caps.ring_slots * sizeof(uint64_t) + 63) / 64 * 64;
  }
  char *base() const { return base_; }

 private:
  template <typename T>
  T &at(uint64_t table, uint64_t slot, uint64_t stride, uint64_t extra = 0) const {
    return *reinterpret_cast<T *>(base_ + table + slot * stride + extra);
  }
  char *base_ = nullptr;
};

// The one writer of an allocation's state (the broker's): the store, then the header's allocation_changes, so
// that a client that loads the count and then the states sees every state stored before that count.
inline void set_allocation_state(const Segment &seg, Allocation &a, AllocationState state) {
  a.state.store(uint32_t(state), std::memory_order_release);
  seg.header().allocation_changes.fetch_add(1, std::memory_order_release);
}

// Where the segment's allocations stand: one more than the changes of their states so far (never 0). An R = 1
// topic's tensors lie at the same addresses for as long as it stays (an entry never changes allocation).
inline uint64_t allocations_epoch(const Segment &seg) {
  return seg.header().allocation_changes.load(std::memory_order_acquire) + 1;
}

// Writes the header of a segment of these capacities (its tables laid out by compute_layout), the fingerprint
// last: the one writer of a header, for the broker that creates a segment and for the tests and the fuzz
// corpus that build one (which leave the names empty). The broker started at created_ns. The counts and
// counters are left as they are (zero in a new segment).
void write_header(Header &h, const Capacities &caps, uint32_t broker_pid, uint64_t created_ns,
                  std::string_view broker_name = {}, std::string_view segment_name = {});

// A broker adopting the segment stamps it as served by itself (pid, version, start time) and counts the
// adoption.
void stamp_adoption(Header &h, uint32_t broker_pid, uint64_t started_ns);

// Checks magic, fingerprint, capacities and offsets of a mapped segment of mapped_size bytes.
// Returns WB_OK, WB_E_ABI_MISMATCH or WB_E_PROTOCOL, with wb_last_error set.
int validate_header(const void *base, uint64_t mapped_size);

}  // namespace wb::shm
