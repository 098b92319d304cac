// The registry's table primitives, which registry.cpp, registry_cuda.cpp and adopt.cpp all build on: the
// segment's lock, the naming and checking of its shared-memory objects, per-client quota, the one writer of a
// tensor entry and its name table, and freeing a client slot or a topic's publisher. They call nothing of those
// three files, so that the calls between the registry's files run one way: registry.cpp above adopt.cpp above
// registry_cuda.cpp, all above this.
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "arms.hpp"
#include "error.hpp"
#include "futex.hpp"
#include "geometry.hpp"
#include "lease.hpp"
#include "private_path.hpp"
#include "registry.hpp"
#include "topic_state.hpp"

namespace wb::broker {

void Registry::copy_name(char *dst, const std::string &name, size_t capacity) {
  size_t n = std::min(name.size(), capacity - 1);
  memcpy(dst, name.data(), n);
  dst[n] = '\0';
}

// A broker's claim on its segment, held for its lifetime: an exclusive flock on a descriptor of its own, which a
// dead process (a zombie too) no longer has, whatever its pid has become. The descriptor is not the one the
// broker maps and sends to clients: a flock belongs to the open file, and clients keep their copy of that one
// after the broker's death. WB_E_BUSY (without a message) while another broker holds the lock.
int Registry::lock_segment() {
  int fd = shm_open(("/" + shm_name_).c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC, 0);
  if (fd < 0) return fail_errno(("opening /dev/shm/" + shm_name_ + " to lock it").c_str());
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int err = errno;
    close(fd);
    if (err == EWOULDBLOCK) return WB_E_BUSY;
    errno = err;
    return fail_errno(("locking /dev/shm/" + shm_name_).c_str());
  }
  lock_fd_ = fd;
  return WB_OK;
}

// What another uid may have left under our name is never adopted: only objects of ours, mode 0600 (ours are
// made so), regular files. The opens use O_NOFOLLOW (glibc's shm_open adds it too, and to boost's opens of the
// segment), so a planted symbolic link is refused by the open rather than followed.
std::string Registry::object_advice() const {
  return "remove /dev/shm/" + shm_name_ + " and /dev/shm/" + shm_name_ +
         ".a* (their owner or root can; the topics they hold are lost), or start weightbusd with another --name";
}

int Registry::check_object(const std::string &object, int fd) const {
  return private_path::check_object(("/dev/shm" + object).c_str(), fd, geteuid(), object_advice().c_str());
}

// An object left under our name that open refused with open_errno: not ours (or not 0600), as lstat says.
int Registry::check_unopened(const std::string &object, int open_errno) const {
  std::string path = "/dev/shm" + object;
  struct stat st;
  int rc = lstat(path.c_str(), &st) == 0 ? private_path::check_object(path.c_str(), st, geteuid(),
                                                                     object_advice().c_str())
                                         : WB_OK;
  if (rc != WB_OK) return rc;
  return fail(WB_E_IO, "opening %s, left by an earlier broker: %s", path.c_str(), strerror(open_errno));
}

std::string Registry::allocation_shm_name(uint32_t allocation) const {
  return "/" + shm_name_ + ".a" + std::to_string(allocation);
}

int Registry::check_quota(uint32_t client, const Quota &more) const {
  return broker::check_quota(used_[client], more, per_client_);
}

void Registry::charge(uint32_t client, const Quota &more) { add_quota(&used_[client], more); }

uint32_t Registry::remove_client(uint32_t slot) {
  uint32_t held = 0;
  std::atomic<uint64_t> *words = seg_.leases(slot);
  for (uint32_t i = 0; i < seg_.caps().leases_per_client; ++i) {
    uint64_t word = words[i].exchange(0, std::memory_order_seq_cst);
    if (word == 0 || lease::topic_of(word) >= seg_.caps().max_topics) continue;
    shm::Topic &t = seg_.topic(lease::topic_of(word));
    bump_and_wake(&t.release_seq, &t.release_waiters);
    ++held;
  }
  arms::drop_owner(seg_, slot + 1);  // its GPU arms: its streams are gone, or it detached
  shm::ClientSlot &s = seg_.client(slot);
  s.topics_published.store(0);
  s.state.store(uint32_t(shm::ClientState::kFree), std::memory_order_release);
  seg_.header().reclaims.fetch_add(1, std::memory_order_relaxed);
  seg_.header().reclaimed_leases.fetch_add(held, std::memory_order_relaxed);
  return held;
}

bool Registry::is_publisher(uint32_t topic, uint32_t client) const {
  if (seg_.topic(topic).ranks > 0) return rank_of(topic, client) != shm::kNone;
  return seg_.topic(topic).publisher.load() == client + 1;
}

uint32_t Registry::release_publisher(uint32_t topic) {
  shm::Topic &t = seg_.topic(topic);
  uint32_t client = t.publisher.load();
  if (client == 0) return 0;
  topic_state::end_unpublished_update(seg_, t);
  t.publisher.store(0, std::memory_order_release);
  t.publisher_pid.store(0);
  seg_.client(client - 1).topics_published.fetch_sub(1);
  return t.dirty_tensors.load();
}

void Registry::settle_gpu_words(uint32_t topic) {
  uint64_t latest = seg_.topic(topic).latest.load();
  for (uint32_t slot = 0; slot < seg_.caps().ring_slots; ++slot) {
    std::atomic<uint64_t> &word = seg_.gpu_word(topic, slot);
    if (int64_t(word.load() - latest) < 0) word.store(latest, std::memory_order_release);
  }
  arms::settle(seg_, topic);  // the arms it claimed and may not have let go
}

int Registry::find_tensor(uint32_t topic, const std::string &name, uint32_t *slot) const {
  const auto &names = tensors_by_name_[topic];
  auto found = names.find(name);
  if (found == names.end()) return WB_E_NOT_FOUND;
  *slot = found->second;
  return WB_OK;
}

void Registry::link_tensor(uint32_t topic, uint32_t slot) {
  shm::Topic &t = seg_.topic(topic);
  shm::Tensor &e = seg_.tensor(slot);
  e.next.store(shm::kNone, std::memory_order_relaxed);
  if (t.last_tensor == shm::kNone) {
    t.first_tensor = slot;
  } else {
    seg_.tensor(t.last_tensor).next.store(slot, std::memory_order_release);
  }
  t.last_tensor = slot;
  t.tensor_count.fetch_add(1, std::memory_order_release);
}

uint32_t Registry::append_tensor(uint32_t topic, const std::string &name, int32_t dtype,
                                 const std::vector<int64_t> &shape, const std::vector<int64_t> &strides,
                                 const TensorPlacement &placement) {
  shm::Header &h = seg_.header();
  uint32_t slot = h.tensor_count.load();
  shm::Tensor &e = seg_.tensor(slot);
  copy_name(e.name, name, sizeof(e.name));
  e.topic = topic;
  e.dtype = dtype;
  e.ndim = uint32_t(shape.size());
  std::copy(shape.begin(), shape.end(), e.shape);
  if (strides.empty()) {
    geometry::contiguous_strides(e.ndim, e.shape, e.strides);
    geometry::contiguous_bytes(e.dtype, e.ndim, e.shape, &e.nbytes);
  } else {
    std::copy(strides.begin(), strides.end(), e.strides);
    geometry::strided_span(e.dtype, e.ndim, e.shape, e.strides, &e.nbytes);
  }
  e.is_view = placement.is_view ? 1 : 0;
  e.root = placement.root == shm::kNone ? slot : placement.root;
  e.view_offset = placement.view_offset;
  e.allocation = placement.allocation;
  e.device_type = placement.device_type;
  bool logical = placement.role == shm::TensorRole::kLogical;
  for (uint32_t r = 0; r < WB_MAX_REPLICAS; ++r) {
    e.replica_offset[r] = placement.replica_offset[r];
    e.replica_allocation[r] = placement.replica_allocation[r];
    // A tensor's replica 0 holds the zeros of "version 0"; a view's versions are its root's; a logical
    // tensor has no bytes of its own (its shards have).
    e.replica_version[r].store(r == 0 && !placement.is_view && !logical ? 0 : shm::kNeverWritten);
  }
  e.role = uint32_t(placement.role);
  e.rank = placement.rank;
  e.logical = placement.logical;
  e.shard_flags = placement.shard_flags;
  bool shard = placement.role == shm::TensorRole::kShard;
  e.first_shard = logical ? shm::kNone : 0;  // a plain tensor leaves the shard fields zero
  e.shard_count.store(0, std::memory_order_relaxed);
  e.next_shard.store(shard ? shm::kNone : 0, std::memory_order_relaxed);
  e.shard_index = placement.shard_index;
  for (uint32_t d = 0; d < WB_MAX_DIMS; ++d) {
    e.region_offset[d] = placement.region_offset != nullptr && d < e.ndim ? placement.region_offset[d] : 0;
  }
  h.tensor_count.store(slot + 1, std::memory_order_release);
  if (shard) {
    e.next.store(shm::kNone, std::memory_order_relaxed);  // not listed: chained from its logical entry
  } else {
    link_tensor(topic, slot);
  }
  return slot;
}

void Registry::forget_names_from(uint32_t topic, uint32_t first) {
  std::erase_if(tensors_by_name_[topic], [first](const auto &entry) { return entry.second >= first; });
}

}  // namespace wb::broker
