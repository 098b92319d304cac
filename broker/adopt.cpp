// Adopting the segment a dead broker left: everything published lives in shared memory, so a new broker
// validates the segment, rebuilds its own name tables and file descriptors from it, and treats the client slots it
// finds live as orphans until their processes are done with them.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>

#include "clock.hpp"
#include "error.hpp"
#include "log.hpp"
#include "registry.hpp"

namespace bip = boost::interprocess;

namespace wb::broker {

namespace {

bool process_alive(uint32_t pid) { return pid != 0 && (kill(pid_t(pid), 0) == 0 || errno == EPERM); }

}  // namespace

int Registry::adopt() {
  std::string path = "/dev/shm/" + shm_name_;
  bip::offset_t size = 0;
  try {
    shm_.get_size(size);
    region_ = bip::mapped_region(shm_, bip::read_write);
  } catch (const bip::interprocess_exception &e) {
    return fail(WB_E_IO, "mapping %s, left by an earlier broker: %s", path.c_str(), e.what());
  }
  if (shm::validate_header(region_.get_address(), uint64_t(size)) != WB_OK) {
    return fail(WB_E_ABI_MISMATCH,
                "%s was left by a weightbusd of another layout (%s); this one cannot adopt it. Remove it "
                "(rm %s %s.a*) to start afresh: its topics are lost",
                path.c_str(), wb_last_error(), path.c_str(), path.c_str());
  }
  seg_ = shm::Segment(region_.get_address());
  shm::Header &h = seg_.header();
  if (int rc = lock_segment(); rc != WB_OK) {
    if (rc != WB_E_BUSY) return rc;
    return fail(WB_E_BUSY, "weightbusd pid %u still serves %s (on another socket?)", h.broker_pid, path.c_str());
  }
  uint32_t dead_broker = h.broker_pid;
  tensors_by_name_.resize(seg_.caps().max_topics);
  allocation_fds_.assign(seg_.caps().max_allocations, -1);
  used_.assign(seg_.caps().max_clients, Quota{});  // orphans' allowances start afresh, as on a reconnect
  if (adopt_names() != WB_OK) {
    return fail(WB_E_PROTOCOL, "%s cannot be adopted: %s. Remove it (rm %s %s.a*) to start afresh", path.c_str(),
                wb_last_error(), path.c_str(), path.c_str());
  }
  if (int rc = open_allocations(); rc != WB_OK) return rc;
  shm::stamp_adoption(h, uint32_t(getpid()), uint64_t(realtime_ns()));
  adopt_allocations();
  adopt_clients();
  // A version whose ranks all published while no broker ran (or as the last one died) is committed now.
  for (uint32_t t = 0; t < h.topic_count.load(); ++t) commit_if_complete(t);
  log(LogLevel::kInfo, "adopted %s: %u topics, %u tensors, %u allocations, %zu clients left by pid %u's broker",
      path.c_str(), h.topic_count.load(), h.tensor_count.load(), h.allocation_count.load(), orphans_.size(),
      dead_broker);
  return WB_OK;
}

// The tables as the dead broker left them, checked before anything is built on them: a segment that fails
// (a crash cannot produce one, a same-uid process could) is refused rather than followed out of bounds.
int Registry::adopt_names() {
  const shm::Header &h = seg_.header();
  const shm::Capacities &caps = seg_.caps();
  if (h.topic_count.load() > caps.max_topics || h.tensor_count.load() > caps.max_tensors ||
      h.allocation_count.load() > caps.max_allocations || h.rank_count.load() > caps.max_ranks) {
    return fail(WB_E_PROTOCOL, "its table counts exceed its capacities");
  }
  for (uint32_t t = 0; t < h.topic_count.load(); ++t) {
    shm::Topic &topic = seg_.topic(t);
    // A removal the dead broker did not finish did not happen: it frees nothing before it leaves kRemoving.
    if (topic.state.load() == uint32_t(shm::TopicState::kRemoving)) topic.state.store(uint32_t(shm::TopicState::kLive));
    if (topic.state.load() != uint32_t(shm::TopicState::kLive)) continue;
    topic.name[WB_NAME_MAX] = '\0';
    topics_by_name_.emplace(topic.name, t);
    topic.notify_subscribers.store(0);  // their pipes went with the old broker
    if (int rc = check_ranks(t); rc != WB_OK) return rc;
    uint32_t i = topic.first_tensor;
    for (uint32_t n = 0; n < topic.tensor_count.load(); ++n, i = seg_.tensor(i).next.load()) {
      if (i >= h.tensor_count.load()) return fail(WB_E_PROTOCOL, "topic '%s' has a broken tensor list", topic.name);
      seg_.tensor(i).name[WB_NAME_MAX] = '\0';
      tensors_by_name_[t].emplace(seg_.tensor(i).name, i);
    }
  }
  return WB_OK;
}

// A sharded topic's Rank entries: inside the table, its own, their publishers client slots. Its shards are walked
// bounded by their counts (Registry::for_each_shard), whatever the chains hold.
int Registry::check_ranks(uint32_t topic) const {
  const shm::Topic &t = seg_.topic(topic);
  if (t.ranks == 0) return WB_OK;
  uint32_t count = seg_.header().rank_count.load();
  if (t.ranks > WB_MAX_RANKS || t.first_rank > count || t.ranks > count - t.first_rank) {
    return fail(WB_E_PROTOCOL, "topic '%s' has %u ranks from entry %u, beyond the rank table", t.name, t.ranks,
                t.first_rank);
  }
  for (uint32_t r = 0; r < t.ranks; ++r) {
    const shm::Rank &entry = seg_.rank(t.first_rank + r);
    if (entry.topic != topic || entry.rank != r || entry.publisher.load() > seg_.caps().max_clients) {
      return fail(WB_E_PROTOCOL, "topic '%s': rank entry %u is not its rank %u", t.name, t.first_rank + r, r);
    }
  }
  return WB_OK;
}

// Whether the client slot is live and its process too: its exports may live on.
bool Registry::exporter_alive(const shm::Allocation &alloc) const {
  if (alloc.exporter_client >= seg_.caps().max_clients) return false;
  const shm::ClientSlot &slot = seg_.client(alloc.exporter_client);
  return slot.state.load() == uint32_t(shm::ClientState::kLive) && slot.generation == alloc.exporter_generation &&
         process_alive(slot.pid);
}

// Host allocations are opened again by name, and checked as the segment was: one that is not ours, or not 0600,
// refuses the adoption (its tensors would be another uid's bytes). A missing or short one loses its tensors.
int Registry::open_allocations() {
  const shm::Header &h = seg_.header();
  for (uint32_t a = 0; a < h.allocation_count.load(); ++a) {
    const shm::Allocation &alloc = seg_.allocation(a);
    if (shm::AllocationKind(alloc.kind.load()) != shm::AllocationKind::kHostShm) continue;
    std::string name = allocation_shm_name(a);
    int fd = shm_open(name.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC, 0);
    int rc = fd >= 0 ? check_object(name, fd) : errno == ENOENT ? WB_OK : check_unopened(name, errno);
    if (rc != WB_OK) {
      if (fd >= 0) close(fd);
      close_allocations();
      return rc;
    }
    struct stat st {};
    if (fd >= 0 && (fstat(fd, &st) != 0 || uint64_t(st.st_size) < alloc.size)) {
      close(fd);
      fd = -1;
    }
    if (fd < 0) log(LogLevel::kError, "allocation %u (%s) is missing or short: its tensors are lost", a, name.c_str());
    allocation_fds_[a] = fd;
  }
  return WB_OK;
}

void Registry::close_allocations() {
  for (int &fd : allocation_fds_) {
    if (fd >= 0) close(fd);
    fd = -1;
  }
}

// Legacy-IPC handles are in the segment and live while their exporter. A VMM allocation's fds went with the old
// broker: one whose exporter lives waits (kPending) for it to resume and export its chunks again; the others are
// dead (readers get WB_E_STALE).
void Registry::adopt_allocations() {
  const shm::Header &h = seg_.header();
  for (uint32_t a = 0; a < h.allocation_count.load(); ++a) {
    shm::Allocation &alloc = seg_.allocation(a);
    next_generation_ = std::max(next_generation_, alloc.generation + 1);
    alloc.importers.store(0);
    auto kind = shm::AllocationKind(alloc.kind.load());
    if (kind == shm::AllocationKind::kCudaVmm) {
      bool awaited = alloc.state.load() == uint32_t(shm::AllocationState::kLive) && exporter_alive(alloc);
      shm::set_allocation_state(seg_, alloc, awaited ? shm::AllocationState::kPending : shm::AllocationState::kDead);
    } else if (kind == shm::AllocationKind::kCudaIpc && !process_alive(alloc.creator_pid)) {
      shm::set_allocation_state(seg_, alloc, shm::AllocationState::kDead);
    }
  }
}

void Registry::adopt_clients() {
  for (uint32_t c = 0; c < seg_.caps().max_clients; ++c) {
    shm::ClientSlot &slot = seg_.client(c);
    next_generation_ = std::max(next_generation_, slot.generation + 1);
    if (slot.state.load() == uint32_t(shm::ClientState::kLive)) orphans_.emplace(c, slot.pid);
  }
}

// The process that published through the orphan attached again, or it is gone: the topic may change hands.
bool Registry::orphan_hands_over(uint32_t slot, uint32_t pid) const {
  auto found = orphans_.find(slot);
  return found != orphans_.end() && (found->second == pid || !process_alive(found->second));
}

// An orphan is done once its process exited. Until then its library may resume it at its next call, even one
// that holds nothing now (a reader about to wait, a detach that closes its topics).
bool Registry::orphan_done(uint32_t pid) const { return !process_alive(pid); }

void Registry::reap_orphans() {
  for (auto it = orphans_.begin(); it != orphans_.end();) {
    auto [slot, pid] = *it;
    if (!orphan_done(pid)) {
      ++it;
      continue;
    }
    for (uint32_t t = 0; t < seg_.header().topic_count.load(); ++t) {
      if (!is_publisher(t, slot)) continue;
      release_publisher(t, slot);
      settle_gpu_words(t);
    }
    exporter_gone(slot);
    uint32_t leases = remove_client(slot);
    log(LogLevel::kInfo, "reclaim pid %u (client %u, attached to the previous broker): %u lease(s)", pid, slot,
        leases);
    it = orphans_.erase(it);
  }
}

int Registry::resume_client(uint32_t slot, uint32_t generation, uint32_t pid) {
  auto found = orphans_.find(slot);
  if (found == orphans_.end() || found->second != pid || seg_.client(slot).generation != generation) {
    return fail(WB_E_NOT_FOUND,
                "this broker has no client %u of pid %u to resume (it started afresh, or reclaimed the client): "
                "attach again",
                slot, pid);
  }
  orphans_.erase(found);
  return WB_OK;
}

}  // namespace wb::broker
