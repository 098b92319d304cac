// The registry's operations on topics, clients and host tensors, and opening or creating the segment; the top of
// the registry's files: it calls adopt.cpp (adopting a dead broker's segment), registry_cuda.cpp (revoking a
// removed topic's CUDA allocations) and registry_tables.cpp (the primitives all of them share), none of which
// calls it.
#include "registry.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>

#include "error.hpp"
#include "futex.hpp"
#include "geometry.hpp"
#include "lease.hpp"
#include "log.hpp"
#include "scope_exit.hpp"

namespace bip = boost::interprocess;

namespace wb::broker {

namespace {

uint64_t align_up(uint64_t value) { return (value + WB_ALIGNMENT - 1) / WB_ALIGNMENT * WB_ALIGNMENT; }

uint64_t realtime_ns() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return uint64_t(ts.tv_sec) * 1000000000 + uint64_t(ts.tv_nsec);
}

}  // namespace

// A clean exit removes the segment and the host allocations; a crash leaves them for the next broker to adopt.
// The lock goes last, so that no successor adopts a segment being removed.
Registry::~Registry() {
  if (!shm_name_.empty() && !keep_segment_) remove_segment();
  if (lock_fd_ >= 0) close(lock_fd_);
}

void Registry::remove_segment() {
  for (uint32_t a = 0; a < allocation_fds_.size(); ++a) {
    if (allocation_fds_[a] < 0) continue;
    close(allocation_fds_[a]);
    shm_unlink(allocation_shm_name(a).c_str());
  }
  bip::shared_memory_object::remove(shm_name_.c_str());
}

int Registry::open(const std::string &broker_name, const shm::Capacities &caps, const Quota &per_client,
                   bool *adopted) {
  shm_name_ = "weightbus-" + std::to_string(getuid()) + "-" + broker_name;
  per_client_ = per_client;
  *adopted = false;
  try {
    shm_ = bip::shared_memory_object(bip::open_only, shm_name_.c_str(), bip::read_write);
  } catch (const bip::interprocess_exception &e) {
    if (e.get_native_error() == ENOENT) return create(caps, broker_name);  // none left behind
    int rc = check_unopened("/" + shm_name_, e.get_native_error());
    shm_name_.clear();  // not ours: leave it where it is
    return rc;
  }
  int rc = check_object("/" + shm_name_, shm_.get_mapping_handle().handle);
  if (rc == WB_OK) rc = adopt();
  if (rc != WB_OK) shm_name_.clear();  // not ours: leave it where it is
  *adopted = rc == WB_OK;
  return rc;
}

int Registry::create(const shm::Capacities &caps, const std::string &broker_name) {
  shm::Layout layout = shm::compute_layout(caps);
  try {
    shm_ = bip::shared_memory_object(bip::create_only, shm_name_.c_str(), bip::read_write, bip::permissions(0600));
    fchmod(shm_.get_mapping_handle().handle, 0600);  // whatever the umask did
    shm_.truncate(bip::offset_t(layout.segment_size));
    region_ = bip::mapped_region(shm_, bip::read_write);
  } catch (const bip::interprocess_exception &e) {
    fail(WB_E_IO, "creating shared memory /%s of %llu bytes: %s", shm_name_.c_str(),
         (unsigned long long)layout.segment_size, e.what());
    shm_name_.clear();
    return WB_E_IO;
  }
  if (int rc = lock_segment(); rc != WB_OK) {
    if (rc == WB_E_BUSY) fail(WB_E_BUSY, "another weightbusd opened /dev/shm/%s as this one created it", shm_name_.c_str());
    shm_name_.clear();
    return rc;
  }
  seg_ = shm::Segment(region_.get_address());
  shm::write_header(seg_.header(), caps, uint32_t(getpid()), realtime_ns(), broker_name, "/" + shm_name_);
  tensors_by_name_.resize(caps.max_topics);
  allocation_fds_.assign(caps.max_allocations, -1);
  used_.assign(caps.max_clients, Quota{});
  return WB_OK;
}

int Registry::segment_fd() const { return shm_.get_mapping_handle().handle; }

int Registry::add_client(uint32_t pid, uint32_t uid, const std::string &name, uint32_t *slot) {
  for (uint32_t c = 0; c < seg_.caps().max_clients; ++c) {
    shm::ClientSlot &s = seg_.client(c);
    if (s.state.load() != uint32_t(shm::ClientState::kFree)) continue;
    s.pid = pid;
    s.uid = uid;
    s.generation = next_generation_++;
    copy_name(s.name, name, sizeof(s.name));
    s.topics_published.store(0);
    for (uint32_t i = 0; i < seg_.caps().leases_per_client; ++i) seg_.leases(c)[i].store(0);
    s.state.store(uint32_t(shm::ClientState::kLive), std::memory_order_release);
    used_[c] = Quota{};
    *slot = c;
    return WB_OK;
  }
  return fail(WB_E_NOSPC, "the client table is full (%u clients; see weightbusd --max-clients)",
              seg_.caps().max_clients);
}

int Registry::create_topic(const std::string &name, uint32_t replicas, uint32_t ranks, uint32_t rank,
                           uint32_t client, uint32_t pid, uint32_t *slot) {
  int rc = geometry::check_name(name.data(), name.size(), "topic");
  if (rc != WB_OK) return rc;
  if (replicas < 1 || replicas > WB_MAX_REPLICAS) {
    return fail(WB_E_INVAL, "replicas is %u, must be 1..%d", replicas, WB_MAX_REPLICAS);
  }
  if (ranks > WB_MAX_RANKS) return fail(WB_E_INVAL, "ranks is %u, must be 1..%d", ranks, WB_MAX_RANKS);
  if (ranks > 0 && rank >= ranks) {
    return fail(WB_E_INVAL, "rank %u of topic '%s' is out of range: it has ranks 0..%u", rank, name.c_str(),
                ranks - 1);
  }
  auto found = topics_by_name_.find(name);
  if (found != topics_by_name_.end()) {
    shm::Topic &t = seg_.topic(found->second);
    if (t.ranks != ranks) {
      if (ranks == 0) {
        return fail(WB_E_INVAL, "topic '%s' is sharded over %u ranks: use wb_topic_create_rank", name.c_str(),
                    t.ranks);
      }
      if (t.ranks == 0) {
        return fail(WB_E_INVAL, "topic '%s' is a plain topic, not sharded: use wb_topic_create", name.c_str());
      }
      return fail(WB_E_INVAL, "topic '%s' is sharded over %u ranks, not %u", name.c_str(), t.ranks, ranks);
    }
    if (ranks > 0) return join_rank(found->second, replicas, rank, client, pid, slot);
    uint32_t publisher = t.publisher.load();
    if (publisher != 0 && !orphan_hands_over(publisher - 1, pid)) {
      return fail(WB_E_BUSY, "topic '%s' already has a publisher (pid %u)", name.c_str(), t.publisher_pid.load());
    }
    if (t.replicas != replicas) {
      return fail(WB_E_INVAL, "topic '%s' exists with %u replicas, not %u", name.c_str(), t.replicas, replicas);
    }
    if (publisher != 0) release_publisher(found->second);  // an orphan's, handed over
    t.publisher_pid.store(pid);
    t.publisher.store(client + 1, std::memory_order_release);
    seg_.client(client).topics_published.fetch_add(1);
    *slot = found->second;
    return WB_OK;
  }
  shm::Header &h = seg_.header();
  uint32_t i = h.topic_count.load();
  if (i >= seg_.caps().max_topics) {
    return fail(WB_E_NOSPC, "the topic table is full (%u topics; see weightbusd --max-topics)", seg_.caps().max_topics);
  }
  uint32_t first_rank = h.rank_count.load();
  if (ranks > seg_.caps().max_ranks - first_rank) {
    return fail(WB_E_NOSPC, "the rank table is full (%u of %u ranks taken, topic '%s' needs %u; see weightbusd "
                "--max-ranks)", first_rank, seg_.caps().max_ranks, name.c_str(), ranks);
  }
  if (int rc = check_quota(client, Quota{.topics = 1}); rc != WB_OK) return rc;
  topics_by_name_.emplace(name, i);  // first: nothing below may fail for want of memory
  shm::Topic &t = seg_.topic(i);
  copy_name(t.name, name, sizeof(t.name));
  t.replicas = replicas;
  t.first_tensor = shm::kNone;
  t.last_tensor = shm::kNone;
  t.ranks = ranks;
  t.first_rank = ranks > 0 ? first_rank : 0;
  for (uint32_t r = 0; r < ranks; ++r) {
    shm::Rank &entry = seg_.rank(first_rank + r);
    entry.topic = i;
    entry.rank = r;
  }
  if (ranks > 0) {
    h.rank_count.store(first_rank + ranks, std::memory_order_release);
    seg_.rank(first_rank + rank).publisher_pid.store(pid);
    seg_.rank(first_rank + rank).publisher.store(client + 1);
  } else {
    t.publisher_pid.store(pid);
    t.publisher.store(client + 1);
  }
  t.state.store(uint32_t(shm::TopicState::kLive), std::memory_order_release);
  h.topic_count.store(i + 1, std::memory_order_release);
  charge(client, Quota{.topics = 1});
  seg_.client(client).topics_published.fetch_add(1);
  *slot = i;
  return WB_OK;
}

// Joins sharded topic `topic` (which has as many ranks as asked) as rank `rank`, taking it over from an orphan.
int Registry::join_rank(uint32_t topic, uint32_t replicas, uint32_t rank, uint32_t client, uint32_t pid,
                        uint32_t *slot) {
  shm::Topic &t = seg_.topic(topic);
  if (t.replicas != replicas) {
    return fail(WB_E_INVAL, "topic '%s' exists with %u replicas, not %u", t.name, t.replicas, replicas);
  }
  shm::Rank &entry = seg_.rank(t.first_rank + rank);
  uint32_t publisher = entry.publisher.load();
  if (publisher != 0 && !orphan_hands_over(publisher - 1, pid)) {
    return fail(WB_E_BUSY, "rank %u of '%s' has a live publisher (pid %u)", rank, t.name, entry.publisher_pid.load());
  }
  if (uint32_t held = rank_of(topic, client); held != shm::kNone) {
    return fail(WB_E_BUSY, "this client already publishes rank %u of '%s': a client holds one rank of a topic "
                "(attach once per rank)", held, t.name);
  }
  if (publisher != 0) release_rank_publisher(topic, rank);  // an orphan's, handed over
  entry.publisher_pid.store(pid);
  entry.publisher.store(client + 1, std::memory_order_release);
  seg_.client(client).topics_published.fetch_add(1);
  *slot = topic;
  return WB_OK;
}

int Registry::open_topic(const std::string &name, uint32_t *slot) const {
  int rc = geometry::check_name(name.data(), name.size(), "topic");
  if (rc != WB_OK) return rc;
  auto found = topics_by_name_.find(name);
  if (found == topics_by_name_.end()) return fail(WB_E_NOT_FOUND, "no topic named '%s'", name.c_str());
  *slot = found->second;
  return WB_OK;
}

int Registry::remove_topic(const std::string &name, uint32_t *slot) {
  int rc = open_topic(name, slot);
  if (rc != WB_OK) return rc;
  shm::Topic &t = seg_.topic(*slot);
  if (t.publisher.load() != 0) {
    return fail(WB_E_BUSY, "topic '%s' has a publisher (pid %u): it must close the topic before it can be removed",
                name.c_str(), t.publisher_pid.load());
  }
  for (uint32_t r = 0; r < t.ranks; ++r) {
    const shm::Rank &entry = seg_.rank(t.first_rank + r);
    if (entry.publisher.load() == 0) continue;
    return fail(WB_E_BUSY, "rank %u of '%s' has a publisher (pid %u): every rank must close the topic before it "
                "can be removed", r, name.c_str(), entry.publisher_pid.load());
  }
  // Made before anything changes: from the first store of the state on, nothing may fail for want of memory.
  const std::vector<std::pair<uint32_t, std::string>> host = host_allocations_of(*slot);
  // Dekker's algorithm with try_lease (libclient/snapshot.cpp), as lease.hpp describes it for the floor: a reader
  // stores its lease word, then loads the state; this stores the state, then counts the lease words. Either the
  // reader sees kRemoving and backs off, or this sees its lease.
  t.state.store(uint32_t(shm::TopicState::kRemoving), std::memory_order_seq_cst);
  if (uint32_t held = lease::count_on_topic(seg_, *slot); held > 0) {
    t.state.store(uint32_t(shm::TopicState::kLive), std::memory_order_seq_cst);
    return fail(WB_E_BUSY, "topic '%s': readers hold %u lease(s) on its versions; they must release them before it "
                "can be removed", name.c_str(), held);
  }
  // Removed before anything is freed: a broker killed from here on leaves its successor a removed topic (whose
  // leftover allocations it frees like any other's when it stops), never a live one missing its memory.
  t.state.store(uint32_t(shm::TopicState::kRemoved), std::memory_order_seq_cst);
  free_host_allocations(host);
  revoke_cuda_allocations(*slot);
  tensors_by_name_[*slot].clear();
  topics_by_name_.erase(name);
  bump_and_wake(&t.version_seq, &t.version_waiters);  // blocked waits and acquires see it gone
  return WB_OK;
}

std::vector<std::pair<uint32_t, std::string>> Registry::host_allocations_of(uint32_t topic) const {
  std::vector<std::pair<uint32_t, std::string>> host;
  for (uint32_t a = 0; a < seg_.header().allocation_count.load(); ++a) {
    const shm::Allocation &alloc = seg_.allocation(a);
    if (alloc.topic == topic && alloc.kind.load() == uint32_t(shm::AllocationKind::kHostShm)) {
      host.emplace_back(a, allocation_shm_name(a));
    }
  }
  return host;
}

// Processes that mapped them keep their mappings; the memory is freed when the last one unmaps.
void Registry::free_host_allocations(const std::vector<std::pair<uint32_t, std::string>> &host) {
  for (const auto &[a, name] : host) {
    if (allocation_fds_[a] >= 0) {
      close(allocation_fds_[a]);
      descriptors_.release(1);
    }
    allocation_fds_[a] = -1;
    shm_unlink(name.c_str());
    seg_.allocation(a).kind.store(uint32_t(shm::AllocationKind::kFree), std::memory_order_release);
  }
}

int Registry::check_topic(uint32_t slot) const {
  if (slot >= seg_.header().topic_count.load() ||
      seg_.topic(slot).state.load() != uint32_t(shm::TopicState::kLive)) {
    return fail(WB_E_NOT_FOUND, "no topic with index %u", slot);
  }
  return WB_OK;
}

int Registry::check_plain(uint32_t topic, const std::vector<NewTensor> &specs, ShardPlan *plan) const {
  const shm::Topic &t = seg_.topic(topic);
  std::unordered_map<std::string, size_t> seen;
  uint32_t *count = &plan->stored;
  std::vector<bool> *is_new = &plan->is_new;
  *count = 0;
  is_new->assign(specs.size(), false);
  for (size_t i = 0; i < specs.size(); ++i) {
    const NewTensor &spec = specs[i];
    if (spec.shard.present) {
      return fail(WB_E_INVAL, "topic '%s' is not sharded: tensor '%s' has a shard region", t.name, spec.name.c_str());
    }
    int rc = geometry::check_name(spec.name.data(), spec.name.size(), "tensor");
    uint64_t nbytes;
    if (rc == WB_OK) rc = geometry::contiguous_bytes(spec.dtype, uint32_t(spec.shape.size()), spec.shape.data(), &nbytes);
    if (rc != WB_OK) return fail(rc, "tensor '%.255s': %s", spec.name.c_str(), wb_last_error());
    if (!seen.emplace(spec.name, i).second) {
      return fail(WB_E_EXISTS, "tensor '%s' appears twice in one allocation", spec.name.c_str());
    }
    uint32_t existing;
    if (find_tensor(topic, spec.name, &existing) == WB_OK) {
      const shm::Tensor &e = seg_.tensor(existing);
      bool same = !e.is_view && e.dtype == spec.dtype && e.ndim == spec.shape.size() &&
                  std::equal(spec.shape.begin(), spec.shape.end(), e.shape);
      if (!same) return fail(WB_E_EXISTS, "tensor '%s' exists with another dtype or shape", spec.name.c_str());
      continue;
    }
    if (t.latest.load() > 0) {
      return fail(WB_E_STATE, "topic '%s' is sealed by its first publish: cannot add tensor '%s'", t.name,
                  spec.name.c_str());
    }
    (*is_new)[i] = true;
    ++*count;
  }
  plan->entries = *count;
  if (seg_.header().tensor_count.load() + *count > seg_.caps().max_tensors) {
    return fail(WB_E_NOSPC, "the tensor table is full (%u entries; see weightbusd --max-tensors)", seg_.caps().max_tensors);
  }
  return WB_OK;
}

int Registry::alloc_tensors(uint32_t topic, uint32_t client, const std::vector<NewTensor> &specs,
                            uint32_t *allocation, int *fd, uint64_t *size) {
  shm::Topic &t = seg_.topic(topic);
  uint32_t rank = rank_of(topic, client);
  ShardPlan plan;
  int rc = t.ranks > 0 ? check_new_shards(topic, rank, specs, &plan) : check_plain(topic, specs, &plan);
  *fd = -1;
  if (rc != WB_OK || plan.stored == 0) return rc;
  if (seg_.header().allocation_count.load() >= seg_.caps().max_allocations) {
    return fail(WB_E_NOSPC, "the allocation table is full (%u; see weightbusd --max-allocations)",
                seg_.caps().max_allocations);
  }
  std::vector<uint64_t> offsets(specs.size());
  uint64_t replica_bytes = 0;
  for (size_t i = 0; i < specs.size(); ++i) {
    if (!plan.is_new[i]) continue;
    uint64_t nbytes;
    geometry::contiguous_bytes(specs[i].dtype, uint32_t(specs[i].shape.size()), specs[i].shape.data(), &nbytes);
    offsets[i] = replica_bytes;
    replica_bytes += align_up(nbytes);
  }
  uint64_t total = std::max<uint64_t>(replica_bytes * t.replicas, WB_ALIGNMENT);
  Quota taken{.tensors = plan.entries, .allocations = 1, .bytes = total};
  if ((rc = check_quota(client, taken)) != WB_OK) return rc;
  shm::Header &h = seg_.header();
  uint32_t a = h.allocation_count.load();
  if ((rc = descriptors_.check(1, "a new host allocation")) != WB_OK) return rc;
  std::string name = allocation_shm_name(a);
  shm_unlink(name.c_str());  // left by a broker whose segment is gone (another uid's only root may remove)
  int memfd = shm_open(name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (memfd < 0 && errno == EEXIST) {
    return fail(WB_E_PERM, "/dev/shm%s, left by another uid, is in the way of this broker's allocation %u: remove it "
                "as its owner or root, or start weightbusd with another --name", name.c_str(), a);
  }
  if (memfd < 0) return fail_errno(("shm_open " + name).c_str());
  // Undone on every way out until the segment changes, running out of memory included.
  uint32_t first = h.tensor_count.load();
  ScopeExit undo([&] {
    forget_names_from(topic, first);
    close(memfd);
    shm_unlink(name.c_str());
  });
  if (fchmod(memfd, 0600) != 0 || ftruncate(memfd, off_t(total)) != 0) return fail_errno("sizing a tensor allocation");
  std::vector<TensorPlacement> placements(specs.size());
  if (t.ranks > 0) {
    enter_logical_names(topic, specs, plan);
  } else {
    for (size_t i = 0, k = 0; i < specs.size(); ++i) {
      if (plan.is_new[i]) tensors_by_name_[topic].emplace(specs[i].name, first + uint32_t(k++));
    }
  }
  undo.release();
  shm::Allocation &alloc = seg_.allocation(a);
  alloc.topic = topic;
  alloc.size = total;
  alloc.generation = next_generation_++;
  alloc.kind.store(uint32_t(shm::AllocationKind::kHostShm), std::memory_order_release);
  h.allocation_count.store(a + 1, std::memory_order_release);
  allocation_fds_[a] = memfd;
  descriptors_.hold(1);
  for (size_t i = 0; i < specs.size(); ++i) {
    placements[i].allocation = a;
    for (uint32_t r = 0; r < WB_MAX_REPLICAS; ++r) placements[i].replica_offset[r] = r * replica_bytes + offsets[i];
  }
  if (t.ranks > 0) {
    append_shards(topic, rank, specs, plan, placements);
    seg_.rank(t.first_rank + rank).bytes.fetch_add(total);
  } else {
    for (size_t i = 0; i < specs.size(); ++i) {
      if (plan.is_new[i]) append_tensor(topic, specs[i].name, specs[i].dtype, specs[i].shape, {}, placements[i]);
    }
  }
  t.bytes.fetch_add(total);
  t.layout_gen.fetch_add(1, std::memory_order_release);
  charge(client, taken);
  *allocation = a;
  *fd = memfd;
  *size = total;
  return WB_OK;
}

int Registry::create_view(uint32_t topic, uint32_t client, const NewView &view) {
  int rc = geometry::check_name(view.name.data(), view.name.size(), "view");
  if (rc == WB_OK) rc = geometry::check_name(view.parent.data(), view.parent.size(), "parent");
  if (rc != WB_OK) return rc;
  if (view.shape.size() != view.strides.size()) {
    return fail(WB_E_SHAPE, "view '%s' has %zu extents but %zu strides", view.name.c_str(), view.shape.size(),
                view.strides.size());
  }
  uint64_t span;
  rc = geometry::strided_span(view.dtype, uint32_t(view.shape.size()), view.shape.data(), view.strides.data(), &span);
  if (rc != WB_OK) return fail(rc, "view '%s': %s", view.name.c_str(), wb_last_error());
  if (seg_.topic(topic).ranks > 0) {
    return fail(WB_E_INVAL, "view '%s': topic '%s' is sharded, and its logical tensors have no bytes of their own to "
                "view", view.name.c_str(), seg_.topic(topic).name);
  }
  uint32_t parent_slot;
  if (find_tensor(topic, view.parent, &parent_slot) != WB_OK) {
    return fail(WB_E_NOT_FOUND, "view '%s': topic '%s' has no tensor '%s'", view.name.c_str(), seg_.topic(topic).name,
                view.parent.c_str());
  }
  const shm::Tensor &parent = seg_.tensor(parent_slot);
  uint32_t elem = wb_dtype_size(view.dtype);
  if (view.byte_offset % elem != 0) {
    return fail(WB_E_DTYPE, "view '%s': byte offset %llu is not a multiple of %s's %u bytes", view.name.c_str(),
                (unsigned long long)view.byte_offset, wb_dtype_name(view.dtype), elem);
  }
  if (view.byte_offset > parent.nbytes || span > parent.nbytes - view.byte_offset) {
    return fail(WB_E_SIZE, "view '%s' spans bytes [%llu, %llu) but parent '%s' has %llu", view.name.c_str(),
                (unsigned long long)view.byte_offset, (unsigned long long)(view.byte_offset + span),
                view.parent.c_str(), (unsigned long long)parent.nbytes);
  }
  uint32_t existing;
  if (find_tensor(topic, view.name, &existing) == WB_OK) {
    const shm::Tensor &e = seg_.tensor(existing);
    bool same = e.is_view && e.root == parent.root && e.dtype == view.dtype &&
                e.view_offset == parent.view_offset + view.byte_offset && e.ndim == view.shape.size() &&
                std::equal(view.shape.begin(), view.shape.end(), e.shape) &&
                std::equal(view.strides.begin(), view.strides.end(), e.strides);
    if (same) return WB_OK;
    return fail(WB_E_EXISTS, "'%s' exists in topic '%s' with another definition", view.name.c_str(),
                seg_.topic(topic).name);
  }
  shm::Header &h = seg_.header();
  uint32_t slot = h.tensor_count.load();
  if (slot >= seg_.caps().max_tensors) {
    return fail(WB_E_NOSPC, "the tensor table is full (%u entries; see weightbusd --max-tensors)", seg_.caps().max_tensors);
  }
  if ((rc = check_quota(client, Quota{.tensors = 1})) != WB_OK) return rc;
  tensors_by_name_[topic].emplace(view.name, slot);  // first: nothing below may fail for want of memory
  append_tensor(topic, view.name, view.dtype, view.shape, view.strides,
                TensorPlacement{.is_view = true,
                                .root = parent.root,
                                .view_offset = parent.view_offset + view.byte_offset,
                                .allocation = parent.allocation,
                                .device_type = parent.device_type});
  seg_.topic(topic).layout_gen.fetch_add(1, std::memory_order_release);
  charge(client, Quota{.tensors = 1});
  return WB_OK;
}

int Registry::allocation_fd(uint32_t allocation, int *fd, uint64_t *size) const {
  if (allocation >= seg_.header().allocation_count.load() || allocation_fds_[allocation] < 0) {
    return fail(WB_E_NOT_FOUND, "no allocation with index %u", allocation);
  }
  *fd = allocation_fds_[allocation];
  *size = seg_.allocation(allocation).size;
  return WB_OK;
}

}  // namespace wb::broker
