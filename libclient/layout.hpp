// The shared-memory segment: the one definition of its layout, used by the broker and every client.
//
// Offsets only, no pointers: each process maps the segment at its own address. Fields that more than one
// process writes are std::atomic (lock-free, hence address-free and usable across processes). Who writes what:
//   broker     everything structural: header, topic/tensor/allocation entries, client slots, reclaim.
//   publisher  its topic's live fields (latest, floor, writing_version, futex words), its version ring and
//              the replica_version words of its tensors.
//   reader     only the lease words of its own client slot, and the release futex word of a topic.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "weightbus/weightbus.h"

namespace wb::shm {

inline constexpr uint64_t kMagic = 0x31474553'53554257ull;  // "WBUSSEG1"
inline constexpr uint32_t kLayoutVersion = 1;
inline constexpr uint32_t kNone = UINT32_MAX;
inline constexpr uint64_t kNeverWritten = UINT64_MAX;        // a replica that holds no version
inline constexpr uint64_t kWritingBit = 1ull << 63;         // R = 1: replica being written in place by version

struct Fingerprint {
  uint32_t layout_version;
  uint32_t header_size;
  uint32_t topic_size;
  uint32_t tensor_size;
  uint32_t allocation_size;
  uint32_t client_size;
  uint32_t version_record_size;
  uint32_t max_replicas;
  bool operator==(const Fingerprint &) const = default;
};

struct Capacities {
  uint32_t max_topics;
  uint32_t max_tensors;  // tensors and views together
  uint32_t max_allocations;
  uint32_t max_clients;
  uint32_t leases_per_client;
  uint32_t ring_slots;  // version records kept per topic
};

enum class TopicState : uint32_t { kFree = 0, kLive = 1 };

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
};

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
};

enum class AllocationKind : uint32_t { kFree = 0, kHostMemfd = 1 };

struct Allocation {
  std::atomic<uint32_t> kind;
  uint32_t topic;
  uint64_t size;
  uint32_t generation;
  uint32_t creator_pid;
  uint8_t device_uuid[16];
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
  // Followed by Capacities::leases_per_client lease words (see lease.hpp).
};

struct VersionRecord {
  std::atomic<uint64_t> version;  // seqlock: 0 while being written, then the version it holds
  uint64_t timestamp_ns;
  uint32_t metadata_size;
  uint32_t changed_count;
  uint8_t metadata[WB_METADATA_MAX];
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
  uint64_t created_ns;
  std::atomic<uint32_t> topic_count;       // entries [0, count) have been handed out; append-only
  std::atomic<uint32_t> tensor_count;
  std::atomic<uint32_t> allocation_count;
  uint32_t reserved;
  Fingerprint fingerprint;  // written last: a reader that sees it valid sees a complete header
};

static_assert(std::atomic<uint64_t>::is_always_lock_free, "cross-process atomics must be lock-free");
static_assert(std::atomic<uint32_t>::is_always_lock_free, "cross-process atomics must be lock-free");

constexpr Fingerprint expected_fingerprint() {
  return Fingerprint{kLayoutVersion,          sizeof(Header),       sizeof(Topic),
                     sizeof(Tensor),          sizeof(Allocation),   sizeof(ClientSlot),
                     sizeof(VersionRecord),   WB_MAX_REPLICAS};
}

// Byte offsets of each table for the given capacities; the broker lays the segment out with them and
// clients check that the header's offsets agree.
struct Layout {
  uint64_t topics_offset;
  uint64_t tensors_offset;
  uint64_t allocations_offset;
  uint64_t clients_offset;
  uint64_t rings_offset;
  uint64_t client_stride;
  uint64_t segment_size;
};

Layout compute_layout(const Capacities &caps);

// Typed access into a mapped segment. Cheap to copy; indices are checked by the callers that take them from
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
    return at<ClientSlot>(header().clients_offset, i, client_stride());
  }
  std::atomic<uint64_t> *leases(uint32_t client_index) const {
    return reinterpret_cast<std::atomic<uint64_t> *>(&client(client_index) + 1);
  }
  VersionRecord &record(uint32_t topic_index, uint64_t version) const {
    uint64_t slot = uint64_t{topic_index} * caps().ring_slots + version % caps().ring_slots;
    return at<VersionRecord>(header().rings_offset, 0, 0, slot * sizeof(VersionRecord));
  }
  char *base() const { return base_; }
  uint64_t client_stride() const;

 private:
  template <typename T>
  T &at(uint64_t table, uint64_t index, uint64_t stride, uint64_t extra = 0) const {
    return *reinterpret_cast<T *>(base_ + table + index * stride + extra);
  }
  char *base_ = nullptr;
};

// Checks magic, fingerprint, capacities and offsets of a mapped segment of mapped_size bytes.
// Returns WB_OK, WB_E_ABI_MISMATCH or WB_E_PROTOCOL, with wb_last_error set.
int validate_header(const void *base, uint64_t mapped_size);

}  // namespace wb::shm
