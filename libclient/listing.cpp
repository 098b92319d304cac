// Listing the broker's clients from the registry.
#include <cstring>

#include "client_internal.hpp"
#include "error.hpp"
#include "lease.hpp"

using namespace wb;

extern "C" WB_API int wb_list_clients(wb_client *client, wb_client_info *out, uint32_t capacity, uint32_t *count) {
  if (client == nullptr || count == nullptr || (out == nullptr && capacity > 0)) {
    return fail(WB_E_INVAL, "client, out or count is NULL");
  }
  if (broker_gone(client)) return fail(WB_E_BROKER_GONE, "the broker is gone");
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
}
