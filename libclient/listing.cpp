// Listing the broker's clients from the registry.
#include <cstring>

#include "client.hpp"
#include "clock.hpp"
#include "error.hpp"
#include "lease.hpp"
#include "struct_size.hpp"

using namespace wb;

extern "C" WB_API int wb_list_clients(wb_client *client, wb_client_info *out, uint32_t capacity, uint32_t *count) try {
  if (client == nullptr || count == nullptr || (out == nullptr && capacity > 0)) {
    return fail(WB_E_INVAL, "client, out or count is NULL");
  }
  if (int rc = client->connection.check_broker(); rc != WB_OK) return rc;
  const shm::Segment &seg = client->seg;
  uint32_t found = 0;
  for (uint32_t c = 0; c < seg.caps().max_clients; ++c) {
    const shm::ClientSlot &slot = seg.client(c);
    if (slot.state.load(std::memory_order_acquire) != uint32_t(shm::ClientState::kLive)) continue;
    if (found < capacity) {
      wb_client_info &info = out[found];
      int rc = check_struct_size(info.struct_size, sizeof(wb_client_info), "wb_client_info");
      if (rc != WB_OK) return rc;
      info.id = c;
      info.pid = slot.pid;
      info.topics_published = slot.topics_published.load();
      info.leases = lease::count_held(seg, c);
      memcpy(info.name, slot.name, sizeof(info.name));
      info.name[sizeof(info.name) - 1] = '\0';
    }
    ++found;
  }
  *count = found;
  return WB_OK;
} catch (...) {
  return wb::abi_error(__func__);
}

namespace {

// Reads one lease slot: its word and acquire time, consistent (the word unchanged around the time's read).
bool read_lease(const shm::Segment &seg, uint32_t c, uint32_t i, uint64_t *word, uint64_t *acquired_ns) {
  *word = seg.leases(c)[i].load(std::memory_order_acquire);
  if (*word == 0 || lease::topic_of(*word) >= seg.caps().max_topics) return false;
  // An acquire load, not a fence (ThreadSanitizer builds refuse fences): the re-check cannot move before it.
  *acquired_ns = seg.lease_times(c)[i].load(std::memory_order_acquire);
  return seg.leases(c)[i].load(std::memory_order_relaxed) == *word;
}

int fill_lease(const shm::Segment &seg, uint32_t c, uint64_t word, uint64_t acquired_ns, wb_lease_info &info) {
  int rc = check_struct_size(info.struct_size, sizeof(wb_lease_info), "wb_lease_info");
  if (rc != WB_OK) return rc;
  const shm::Topic &topic = seg.topic(lease::topic_of(word));
  info.client_id = c;
  info.pid = seg.client(c).pid;
  memcpy(info.topic, topic.name, sizeof(info.topic));
  info.topic[sizeof(info.topic) - 1] = '\0';
  info.version = lease::version_of(word);
  info.latest = topic.latest.load(std::memory_order_acquire);
  const uint64_t now = uint64_t(monotonic_ns());
  info.held_ns = now > acquired_ns ? now - acquired_ns : 0;
  return WB_OK;
}

}  // namespace

extern "C" WB_API int wb_list_leases(wb_client *client, wb_lease_info *out, uint32_t capacity, uint32_t *count) try {
  if (client == nullptr || count == nullptr || (out == nullptr && capacity > 0)) {
    return fail(WB_E_INVAL, "client, out or count is NULL");
  }
  if (int rc = client->connection.check_broker(); rc != WB_OK) return rc;
  const shm::Segment &seg = client->seg;
  uint32_t found = 0;
  for (uint32_t c = 0; c < seg.caps().max_clients; ++c) {
    if (seg.client(c).state.load(std::memory_order_acquire) != uint32_t(shm::ClientState::kLive)) continue;
    for (uint32_t i = 0; i < seg.caps().leases_per_client; ++i) {
      uint64_t word = 0, acquired_ns = 0;
      if (!read_lease(seg, c, i, &word, &acquired_ns)) continue;
      if (found < capacity) {
        int rc = fill_lease(seg, c, word, acquired_ns, out[found]);
        if (rc != WB_OK) return rc;
      }
      ++found;
    }
  }
  *count = found;
  return WB_OK;
} catch (...) {
  return wb::abi_error(__func__);
}
