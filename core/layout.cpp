#include "layout.hpp"

#include <algorithm>
#include <cstring>

#include "error.hpp"

namespace wb::shm {

namespace {

constexpr uint64_t kTableAlignment = 4096;

uint64_t align_up(uint64_t value, uint64_t alignment) { return (value + alignment - 1) / alignment * alignment; }

bool within(uint32_t value, uint32_t min, uint32_t max) { return value >= min && value <= max; }

bool within_limits(const Capacities &caps) {
  const Capacities &max = kCapacityLimits;
  return within(caps.max_topics, 1, max.max_topics) && within(caps.max_tensors, 1, max.max_tensors) &&
         within(caps.max_allocations, 1, max.max_allocations) && within(caps.max_clients, 1, max.max_clients) &&
         within(caps.leases_per_client, 1, max.leases_per_client) && within(caps.ring_slots, 2, max.ring_slots) &&
         within(caps.max_ranks, 1, max.max_ranks);
}

// Copies text into a char field of the header, cut to fit and NUL-terminated.
template <size_t N>
void copy_name(char (&field)[N], std::string_view text) {
  const size_t n = std::min(text.size(), N - 1);
  if (n > 0) memcpy(field, text.data(), n);  // an empty view's data() may be null, which memcpy must not get
  memset(field + n, 0, N - n);
}

}  // namespace

Layout compute_layout(const Capacities &caps) {
  Layout layout{};
  // Each lease slot is a lease word and its acquire time.
  layout.client_stride = align_up(sizeof(ClientSlot) + uint64_t{caps.leases_per_client} * 2 * sizeof(uint64_t), 64);
  uint64_t at = align_up(sizeof(Header), kTableAlignment);
  layout.topics_offset = at;
  at = align_up(at + uint64_t{caps.max_topics} * sizeof(Topic), kTableAlignment);
  layout.tensors_offset = at;
  at = align_up(at + uint64_t{caps.max_tensors} * sizeof(Tensor), kTableAlignment);
  layout.allocations_offset = at;
  at = align_up(at + uint64_t{caps.max_allocations} * sizeof(Allocation), kTableAlignment);
  layout.clients_offset = at;
  at = align_up(at + uint64_t{caps.max_clients} * layout.client_stride, kTableAlignment);
  layout.rings_offset = at;
  at = align_up(at + uint64_t{caps.max_topics} * caps.ring_slots * sizeof(VersionRecord), kTableAlignment);
  layout.ranks_offset = at;
  at = align_up(at + uint64_t{caps.max_ranks} * sizeof(Rank), kTableAlignment);
  layout.gpu_words_offset = at;  // last, and whole pages: see Segment::gpu_word
  at += Segment::arms_offset(caps);  // then the arm slots, in the same pages
  at = align_up(at + uint64_t{caps.max_topics} * kArmsPerTopic * sizeof(ArmSlot), kTableAlignment);
  layout.segment_size = at;
  return layout;
}

void write_header(Header &h, const Capacities &caps, uint32_t broker_pid, uint64_t created_ns,
                  std::string_view broker_name, std::string_view segment_name) {
  Layout layout = compute_layout(caps);
  h.magic = kMagic;
  h.segment_size = layout.segment_size;
  h.capacities = caps;
  h.broker_pid = broker_pid;
  h.topics_offset = layout.topics_offset;
  h.tensors_offset = layout.tensors_offset;
  h.allocations_offset = layout.allocations_offset;
  h.clients_offset = layout.clients_offset;
  h.rings_offset = layout.rings_offset;
  h.ranks_offset = layout.ranks_offset;
  h.gpu_words_offset = layout.gpu_words_offset;
  h.client_stride = layout.client_stride;
  h.created_ns = created_ns;
  copy_name(h.broker_name, broker_name);
  copy_name(h.segment_name, segment_name);
  h.broker_version.store(WB_VERSION, std::memory_order_relaxed);
  h.broker_started_ns.store(created_ns, std::memory_order_relaxed);
  // Last, also for the compiler: a broker that dies while writing the header leaves no fingerprint. Clients
  // get the segment over the socket afterwards, which orders the rest.
  std::atomic_signal_fence(std::memory_order_release);
  h.fingerprint = expected_fingerprint();
}

void stamp_adoption(Header &h, uint32_t broker_pid, uint64_t started_ns) {
  h.broker_pid = broker_pid;
  h.broker_version.store(WB_VERSION, std::memory_order_relaxed);
  h.broker_started_ns.store(started_ns, std::memory_order_relaxed);
  h.adoptions.fetch_add(1, std::memory_order_relaxed);
}

int validate_header(const void *base, uint64_t mapped_size) {
  if (mapped_size < sizeof(Header)) {
    return fail(WB_E_ABI_MISMATCH, "segment of %llu bytes is smaller than a header",
                static_cast<unsigned long long>(mapped_size));
  }
  const Header &h = *static_cast<const Header *>(base);
  if (h.magic != kMagic) return fail(WB_E_ABI_MISMATCH, "segment has no weightbus magic number");
  Fingerprint want = expected_fingerprint();
  if (!(h.fingerprint == want)) {
    return fail(WB_E_ABI_MISMATCH,
                "segment layout %u (header %u, topic %u, tensor %u bytes) differs from this library's "
                "layout %u (header %u, topic %u, tensor %u bytes)",
                h.fingerprint.layout_version, h.fingerprint.header_size, h.fingerprint.topic_size,
                h.fingerprint.tensor_size, want.layout_version, want.header_size, want.topic_size,
                want.tensor_size);
  }
  const Capacities &caps = h.capacities;
  if (!within_limits(caps)) return fail(WB_E_PROTOCOL, "segment header has invalid capacities");
  Layout layout = compute_layout(caps);
  if (layout.segment_size != h.segment_size || layout.segment_size > mapped_size ||
      layout.topics_offset != h.topics_offset || layout.tensors_offset != h.tensors_offset ||
      layout.allocations_offset != h.allocations_offset || layout.clients_offset != h.clients_offset ||
      layout.rings_offset != h.rings_offset || layout.ranks_offset != h.ranks_offset ||
      layout.gpu_words_offset != h.gpu_words_offset || layout.client_stride != h.client_stride) {
    return fail(WB_E_PROTOCOL, "segment header's table offsets do not match its capacities");
  }
  return WB_OK;
}

}  // namespace wb::shm
