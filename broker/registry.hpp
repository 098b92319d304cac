// The broker's side of the shared-memory registry: it creates the segment and is the one writer of its
// structure (topics, tensors, views, allocations, client slots). Every operation validates its input first and
// changes nothing when it fails, so that a bad request cannot corrupt the registry.
#pragma once

#include <boost/interprocess/mapped_region.hpp>
#include <boost/interprocess/shared_memory_object.hpp>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "cuda_chunks.hpp"
#include "descriptors.hpp"
#include "layout.hpp"
#include "quota.hpp"
#include "region.hpp"

namespace wb::broker {

// Where a shard lies in its logical tensor (a sharded topic's tensors; absent for a plain topic's): the
// tensor's shape is the shard's extent.
struct NewShard {
  bool present = false;
  std::vector<int64_t> logical_shape;
  std::vector<int64_t> offset;
  uint32_t flags = 0;  // WB_SHARD_REPLICATED
};

struct NewTensor {
  std::string name;
  int32_t dtype;
  std::vector<int64_t> shape;
  NewShard shard;
};

struct NewView {
  std::string name;
  std::string parent;
  int32_t dtype;
  uint64_t byte_offset;
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;
};

struct NewCudaAllocation {
  uint32_t topic;
  uint32_t kind;  // shm::AllocationKind
  uint64_t size;
  std::vector<uint8_t> device_uuid;
  std::vector<uint8_t> ipc_handle;
  uint64_t base;
  uint32_t chunk_count;
};

struct NewRegisteredTensor {
  std::string name;
  int32_t dtype;
  std::vector<int64_t> shape;
  std::vector<uint32_t> allocations;  // one per replica
  std::vector<uint64_t> offsets;
  NewShard shard;
};

class Registry {
 public:
  Registry() = default;
  Registry(const Registry &) = delete;
  Registry &operator=(const Registry &) = delete;
  ~Registry();

  // Opens the segment /weightbus-<uid>-<name> (mode 0600): adopts the one a dead broker left, when it has this
  // layout (adopt.cpp; its capacities win over caps), else creates it. *adopted says which. Either way it locks
  // the segment for the broker's lifetime: one that another live broker holds is refused (WB_E_BUSY). Each
  // client may create at most per_client of the registry's entries and memory.
  int open(const std::string &broker_name, const shm::Capacities &caps, const Quota &per_client, bool *adopted);
  int segment_fd() const;
  // The segment and its host allocations stay in /dev/shm when the broker exits (weightbusd --on-stop keep,
  // `weightbus stop --keep`), for the next broker of this name to adopt as it adopts a crashed one's.
  void keep_segment() { keep_segment_ = true; }
  const shm::Segment &seg() const { return seg_; }
  const std::string &shm_name() const { return shm_name_; }
  // The broker's descriptor budget. The registry counts in it the descriptors it keeps (host allocations, CUDA
  // chunks) and refuses one beyond it; the server and dispatcher count theirs (connections, notify pipes).
  Descriptors &descriptors() { return descriptors_; }
  const Descriptors &descriptors() const { return descriptors_; }

  int add_client(uint32_t pid, uint32_t uid, const std::string &name, uint32_t *slot);
  // Clears the client's leases, waking the publishers they held back, and frees its slot; returns how many
  // leases it held.
  uint32_t remove_client(uint32_t slot);

  // Creates a topic with `client` as publisher, or hands an orphaned one over to it. ranks 0: a plain topic;
  // ranks N >= 1: creates sharded topic name with N ranks, or joins it, as rank `rank` (one rank per client).
  int create_topic(const std::string &name, uint32_t replicas, uint32_t ranks, uint32_t rank, uint32_t client,
                   uint32_t pid, uint32_t *slot);
  int open_topic(const std::string &name, uint32_t *slot) const;
  // Removes a topic that no publisher holds (else WB_E_BUSY) and no lease pins (WB_E_BUSY): unlinks its host
  // allocations, revokes its CUDA ones and retires its entry (*slot), which is never handed out again.
  int remove_topic(const std::string &name, uint32_t *slot);
  // The topic must be live: WB_E_NOT_FOUND otherwise.
  int check_topic(uint32_t slot) const;
  // Whether client publishes the topic: a plain topic's publisher, or the publisher of one of its ranks.
  bool is_publisher(uint32_t topic, uint32_t client) const;
  // The rank of a sharded topic that client publishes, kNone when it holds none (or the topic is plain).
  // Inline: the files of versions (commit.cpp) read it too, and call nothing of this file.
  uint32_t rank_of(uint32_t topic, uint32_t client) const {
    const shm::Topic &t = seg_.topic(topic);
    for (uint32_t r = 0; r < t.ranks; ++r) {
      if (seg_.rank(t.first_rank + r).publisher.load() == client + 1) return r;
    }
    return shm::kNone;
  }
  // The publisher left (closed or died): ends an unpublished update and frees the topic for a new publisher.
  // Returns the number of tensors left dirty. A plain topic's (registry_tables.cpp).
  uint32_t release_publisher(uint32_t topic);
  // The same for any topic client publishes: a sharded topic's rank that client holds is released
  // (release_rank_publisher).
  uint32_t release_publisher(uint32_t topic, uint32_t client);
  // A publisher whose process is gone writes no more GPU words (layout.hpp: Segment::gpu_word): each of the
  // topic's words below its latest version gets it, so that readers' streams waiting for one go on, with the
  // bytes as the publisher left them (as its host tensors are); so do the arm slots it claimed (core/arms.hpp).
  // Not for a live publisher that closes the topic: its streams write its words yet.
  void settle_gpu_words(uint32_t topic);
  // A rank's publisher left: ends the version it was writing (end_rank_version), frees the rank for a new
  // publisher, then commits what every rank has published (commit_if_complete). Its seal and shards stay.
  void release_rank_publisher(uint32_t topic, uint32_t rank);
  // Seals the layout of the rank client publishes (WB_E_ROLE if none); idempotent. The seal of the last rank
  // checks that the shards cover every logical tensor (WB_E_LAYOUT naming the first gap, the rank stays
  // unsealed), then completes the layout: versions may begin.
  int seal_rank(uint32_t topic, uint32_t client);

  // Sharded topics, versions (commit.cpp). Commits version latest + 1 of a sharded topic once every rank's
  // Rank::published has reached it (the record's changed count, its version word, then latest; wakes readers);
  // returns whether it did. Called on RankPublished, when a rank's publisher ends, and on adoption.
  bool commit_if_complete(uint32_t topic);
  // A rank's publisher left (closed or died) before its Rank::published reached the version it was writing:
  // rolls its shards back (R >= 2) or counts those left half-written dirty (R = 1). The caller then clears the
  // rank's publisher and calls commit_if_complete.
  void end_rank_version(uint32_t topic, uint32_t rank);

  // Allocates the tensors of `specs` that do not exist yet in one shared-memory object (named after the segment
  // and the allocation, so that a broker restarted after a crash can open it again); *fd is -1 when all existed.
  int alloc_tensors(uint32_t topic, uint32_t client, const std::vector<NewTensor> &specs, uint32_t *allocation,
                    int *fd, uint64_t *size);
  int create_view(uint32_t topic, uint32_t client, const NewView &view);
  int allocation_fd(uint32_t allocation, int *fd, uint64_t *size) const;

  // CUDA allocations (registry_cuda.cpp). `client` is the requesting client slot throughout.
  // A new CUDA allocation exported by client; VMM ones stay pending until all their chunks arrived.
  int register_cuda_allocation(const NewCudaAllocation &a, uint32_t client, uint32_t pid, uint32_t *slot);
  // Takes the chunk fds it keeps out of fds (the rest stay the caller's to close).
  int add_allocation_chunks(uint32_t allocation, uint32_t client, uint32_t first, const std::vector<uint64_t> &sizes,
                            std::vector<int> &fds);
  int register_tensors(uint32_t topic, uint32_t client, const std::vector<NewRegisteredTensor> &tensors);
  // By its exporter or its topic's publisher. *importers: processes that still have it open.
  int revoke_allocation(uint32_t allocation, uint32_t client, uint32_t *importers);
  // What an importer needs of one chunk: its fd (-1 for legacy IPC, whose handle is in the segment), offset
  // and size. The fd stays the registry's.
  int import_chunk(uint32_t allocation, uint32_t chunk, int *fd, uint64_t *offset, uint64_t *size) const;
  bool is_cuda_allocation(uint32_t allocation) const;
  void add_importer(uint32_t allocation);
  void drop_importer(uint32_t allocation);  // and wakes an exporter waiting for the count to fall
  // The client is gone: its legacy-IPC allocations die with it (and its unfinished VMM ones); its complete VMM
  // allocations live on. Returns how many died.
  uint32_t exporter_gone(uint32_t client);

  // Adoption (adopt.cpp): client slots a dead broker left live are orphans. Their leases hold until their
  // process exits or holds nothing any more; a topic one publishes may be taken over by the same process (it
  // attached again) or once it exited.
  bool has_orphans() const { return !orphans_.empty(); }
  // Frees the slots of orphans that are done (remove_client).
  void reap_orphans();
  // The orphan's process attached again asking for its slot back (same pid and slot generation): it is a
  // live client again, with its leases, topics and exports. WB_E_NOT_FOUND when this broker has no such orphan.
  int resume_client(uint32_t slot, uint32_t generation, uint32_t pid);

 private:
  int create(const shm::Capacities &caps, const std::string &broker_name);
  int join_rank(uint32_t topic, uint32_t replicas, uint32_t rank, uint32_t client, uint32_t pid, uint32_t *slot);
  void remove_segment();
  int adopt();
  int adopt_names();
  int check_ranks(uint32_t topic) const;
  // Opens the adopted segment's host allocations into allocation_fds_, each checked as the segment is; a
  // refusal (WB_E_PERM naming it) closes them again and refuses the adoption.
  int open_allocations();
  void close_allocations();
  void adopt_allocations();
  void adopt_clients();
  bool orphan_hands_over(uint32_t slot, uint32_t pid) const;
  bool orphan_done(uint32_t pid) const;
  bool exporter_alive(const shm::Allocation &alloc) const;
  // Sharded topics (registry_shards.cpp, below registry.cpp, adopt.cpp and registry_cuda.cpp, above
  // registry_tables.cpp). Checks a rank's shards before anything changes (all or nothing): *plan says which are
  // new (a box registered again by its rank keeps its storage) and which make their logical entry.
  struct ShardPlan {
    std::vector<bool> is_new;        // per spec
    std::vector<bool> new_logical;   // per spec: the first new shard of a logical tensor that does not exist
    uint32_t entries = 0;            // tensor entries to make: shards and logical entries
    uint32_t stored = 0;             // entries with storage: new shards, or a plain topic's new tensors
  };
  // A plain topic's tensors: which are new (a name registered again with its dtype and shape keeps its storage).
  int check_plain(uint32_t topic, const std::vector<NewTensor> &specs, ShardPlan *plan) const;
  int check_new_shards(uint32_t topic, uint32_t rank, const std::vector<NewTensor> &specs, ShardPlan *plan) const;
  int check_shard(uint32_t topic, uint32_t rank, const std::vector<NewTensor> &specs, size_t i, bool *is_new,
                  bool *new_logical) const;
  // The slots the request will take, in order: logical entries before their first shard. Enters the new
  // logical names in tensors_by_name_ (forget_names_from withdraws them).
  void enter_logical_names(uint32_t topic, const std::vector<NewTensor> &specs, const ShardPlan &plan);
  int check_against_shards(uint32_t logical, uint32_t rank, const NewTensor &spec, const region::Box &box,
                           bool *is_new) const;
  template <typename F>
  void for_each_shard(uint32_t logical, F &&f) const;
  int check_coverage(uint32_t topic) const;
  int check_cuda_allocation(uint32_t allocation, shm::Allocation **out) const;
  // A removed topic's allocations (remove_topic): host ones closed, unlinked and marked free, CUDA ones revoked.
  std::vector<std::pair<uint32_t, std::string>> host_allocations_of(uint32_t topic) const;
  void free_host_allocations(const std::vector<std::pair<uint32_t, std::string>> &host);
  void revoke_cuda_allocations(uint32_t topic);
  void drop_chunks(uint32_t allocation);  // closes the chunk fds the broker keeps of allocation
  int check_registered(uint32_t topic, uint32_t client, const NewRegisteredTensor &t) const;
  int check_replicas(uint32_t topic, uint32_t client, const NewRegisteredTensor &t, uint64_t nbytes) const;
  int register_shards(uint32_t topic, uint32_t client, const std::vector<NewRegisteredTensor> &tensors);

  // The table primitives (registry_tables.cpp), which registry.cpp, adopt.cpp and registry_cuda.cpp all call and
  // which call none of them (so do remove_client, is_publisher and release_publisher above).
  // copy_name: name into a fixed, NUL-terminated field, cut to fit.
  static void copy_name(char *dst, const std::string &name, size_t capacity);
  int lock_segment();
  std::string allocation_shm_name(uint32_t allocation) const;
  // WB_E_PERM naming the object (a name under /dev/shm, "/weightbus-...") unless it is a regular file of ours
  // with mode 0600, ending with object_advice(); check_unopened for one that open refused.
  std::string object_advice() const;
  int check_object(const std::string &object, int fd) const;
  int check_unopened(const std::string &object, int open_errno) const;
  int find_tensor(uint32_t topic, const std::string &name, uint32_t *slot) const;
  // Appends the tensor in `slot` to the topic's list. Its name is entered in tensors_by_name_ before the
  // segment changes (entering it may fail for want of memory, nothing after may); forget_names_from withdraws
  // the names of tensors from slot `first` on, which a failed request entered.
  void link_tensor(uint32_t topic, uint32_t slot);
  void forget_names_from(uint32_t topic, uint32_t first);
  // Where a new tensor entry's bytes are: what differs between a host tensor, a view and a CUDA tensor.
  struct TensorPlacement {
    bool is_view = false;
    uint32_t root = shm::kNone;  // a view's root; kNone: the entry is its own root
    uint64_t view_offset = 0;    // a view's bytes from its root's start
    uint32_t allocation = 0;
    int32_t device_type = WB_DEVICE_HOST;
    uint64_t replica_offset[WB_MAX_REPLICAS] = {};
    uint32_t replica_allocation[WB_MAX_REPLICAS] = {};  // CUDA tensors only
    // Sharded topics: kLogical (no storage, listed) or kShard (not listed: chain_shard links it).
    shm::TensorRole role = shm::TensorRole::kPlain;
    uint32_t rank = 0;
    uint32_t logical = shm::kNone;
    uint32_t shard_flags = 0;
    uint32_t shard_index = 0;
    const int64_t *region_offset = nullptr;
  };
  // Makes the entries of a checked request's new shards (and the logical entries they need), placements[i]
  // for specs[i], and chains each shard to its logical entry. Rank::shards counts them.
  void append_shards(uint32_t topic, uint32_t rank, const std::vector<NewTensor> &specs, const ShardPlan &plan,
                     std::vector<TensorPlacement> &placements);
  // Appends shard `slot` to its logical entry's chain (next_shard, then shard_count with release).
  void chain_shard(uint32_t logical, uint32_t slot);
  // The one writer of a tensor entry: fills the next entry of the table (name, dtype, shape, strides —
  // contiguous when `strides` is empty —, byte count, placement), counts it in the header and links it into
  // the topic's list (link_tensor). Returns its slot. The caller has checked the request, and entered the name
  // in tensors_by_name_: nothing here fails.
  uint32_t append_tensor(uint32_t topic, const std::string &name, int32_t dtype, const std::vector<int64_t> &shape,
                         const std::vector<int64_t> &strides, const TensorPlacement &placement);
  // The region of shard entry `slot` in its logical tensor.
  region::Box shard_box(uint32_t slot) const;
  // WB_E_NOSPC if client may not create `more`; charge() counts it once created.
  int check_quota(uint32_t client, const Quota &more) const;
  void charge(uint32_t client, const Quota &more);

  boost::interprocess::shared_memory_object shm_;
  boost::interprocess::mapped_region region_;
  std::string shm_name_;
  bool keep_segment_ = false;
  int lock_fd_ = -1;  // flocked for the broker's lifetime (lock_segment)
  shm::Segment seg_;
  std::unordered_map<std::string, uint32_t> topics_by_name_;
  std::vector<std::unordered_map<std::string, uint32_t>> tensors_by_name_;  // per topic
  std::vector<int> allocation_fds_;
  uint32_t next_generation_ = 1;
  Quota per_client_;
  std::vector<Quota> used_;  // per client slot, since it was handed out
  CudaChunks cuda_chunks_;
  Descriptors descriptors_;
  std::unordered_map<uint32_t, uint32_t> orphans_;  // client slot -> pid
};

}  // namespace wb::broker
