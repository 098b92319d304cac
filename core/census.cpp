#include "census.hpp"

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "clock.hpp"
#include "lease.hpp"
#include "topic_state.hpp"

namespace wb::census {

namespace {

// A name field of the segment, which a process of the broker's uid may have left without its NUL.
template <size_t N, size_t M>
void copy_name(char (&out)[N], const char (&field)[M]) {
  static_assert(N >= M, "the public field holds the segment's");
  memcpy(out, field, M);
  out[M - 1] = '\0';
}

uint32_t live_clients(const shm::Segment &seg) {
  uint32_t live = 0;
  for (uint32_t c = 0; c < seg.caps().max_clients; ++c)
    live += seg.client(c).state.load(std::memory_order_acquire) == uint32_t(shm::ClientState::kLive);
  return live;
}

}  // namespace

void topic_info(const shm::Segment &seg, uint32_t slot, wb_topic_info *out) {
  const shm::Topic &entry = seg.topic(slot);
  out->replicas = entry.replicas;
  copy_name(out->name, entry.name);
  out->latest = entry.latest.load();
  out->tensor_count = entry.tensor_count.load();
  out->publisher_pid = entry.publisher.load() != 0 ? entry.publisher_pid.load() : 0;
  out->dirty = entry.dirty_tensors.load() > 0;
  out->bytes = entry.bytes.load();
  if (out->struct_size < offsetof(wb_topic_info, published_ns)) return;
  out->ranks = entry.ranks;
  out->layout_complete = entry.layout_complete.load();
  if (out->struct_size < sizeof(wb_topic_info)) return;
  out->published_ns = published_ns(seg, slot);
}

uint64_t published_ns(const shm::Segment &seg, uint32_t slot) {
  const shm::Topic &t = seg.topic(slot);
  // The record is read as a reader reads one (the seqlock of VersionRecord): its version, the stamp, its version
  // again. A publish in between moves latest on; a few tries see a record that holds still.
  for (int tries = 0; tries < 3; ++tries) {
    const uint64_t latest = t.latest.load(std::memory_order_acquire);
    if (latest == 0) return 0;
    const shm::VersionRecord &rec = seg.record(slot, latest);
    if (rec.version.load(std::memory_order_acquire) != latest) continue;
    const uint64_t ns = rec.timestamp_ns.load(std::memory_order_acquire);
    if (rec.version.load(std::memory_order_acquire) == latest) return ns;
  }
  return 0;
}

bool publishers_attached(const shm::Segment &seg, const shm::Topic &t) {
  if (t.ranks == 0) return t.publisher.load(std::memory_order_acquire) != 0;
  for (uint32_t k = 0; k < t.ranks; ++k) {
    const shm::Rank *r = topic_state::rank_entry(seg, t, k);
    if (r == nullptr || r->publisher.load(std::memory_order_acquire) == 0) return false;
  }
  return true;
}

bool lease_info(const shm::Segment &seg, uint32_t c, uint32_t i, wb_lease_info *out) {
  const uint64_t word = seg.leases(c)[i].load(std::memory_order_acquire);
  if (word == 0 || lease::topic_of(word) >= seg.caps().max_topics) return false;
  // An acquire load, not a fence (ThreadSanitizer builds refuse fences): the re-check cannot move before it.
  const uint64_t acquired_ns = seg.lease_times(c)[i].load(std::memory_order_acquire);
  if (seg.leases(c)[i].load(std::memory_order_relaxed) != word) return false;
  const shm::Topic &topic = seg.topic(lease::topic_of(word));
  out->client_id = c;
  out->pid = seg.client(c).pid;
  copy_name(out->topic, topic.name);
  out->version = lease::version_of(word);
  out->latest = topic.latest.load(std::memory_order_acquire);
  const uint64_t now = uint64_t(monotonic_ns());
  out->held_ns = now > acquired_ns ? now - acquired_ns : 0;
  return true;
}

void broker_info(const shm::Segment &seg, wb_broker_info *out) {
  const shm::Header &h = seg.header();
  const shm::Capacities &caps = seg.caps();
  out->pid = h.broker_pid;
  out->version = h.broker_version.load(std::memory_order_relaxed);
  copy_name(out->name, h.broker_name);
  copy_name(out->segment, h.segment_name);
  out->started_ns = h.broker_started_ns.load(std::memory_order_relaxed);
  out->created_ns = h.created_ns;
  // The counts are of entries handed out: a segment scribbled over may claim more than its tables hold.
  out->topics = std::min(h.topic_count.load(), caps.max_topics);
  out->max_topics = caps.max_topics;
  out->tensors = std::min(h.tensor_count.load(), caps.max_tensors);
  out->max_tensors = caps.max_tensors;
  out->allocations = std::min(h.allocation_count.load(), caps.max_allocations);
  out->max_allocations = caps.max_allocations;
  out->clients = live_clients(seg);
  out->max_clients = caps.max_clients;
  out->ranks = std::min(h.rank_count.load(), caps.max_ranks);
  out->max_ranks = caps.max_ranks;
  out->leases_per_client = caps.leases_per_client;
  out->ring_slots = caps.ring_slots;
  out->publishes = h.publishes.load(std::memory_order_relaxed);
  out->reclaims = h.reclaims.load(std::memory_order_relaxed);
  out->reclaimed_leases = h.reclaimed_leases.load(std::memory_order_relaxed);
  out->adoptions = h.adoptions.load(std::memory_order_relaxed);
}

}  // namespace wb::census
