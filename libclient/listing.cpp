// Listing the broker's clients and leases, and describing the broker, from the registry (census.hpp reads it).
#include <cstring>

#include "census.hpp"
#include "client.hpp"
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
      // Read into a local first: the caller's element is written only when there is room for it.
      wb_lease_info lease = WB_LEASE_INFO_INIT;
      if (!census::lease_info(seg, c, i, &lease)) continue;
      if (found < capacity) {
        int rc = check_struct_size(out[found].struct_size, sizeof(wb_lease_info), "wb_lease_info");
        if (rc != WB_OK) return rc;
        lease.struct_size = out[found].struct_size;
        out[found] = lease;
      }
      ++found;
    }
  }
  *count = found;
  return WB_OK;
} catch (...) {
  return wb::abi_error(__func__);
}

extern "C" WB_API int wb_broker_get_info(wb_client *client, wb_broker_info *out) try {
  if (client == nullptr || out == nullptr) return fail(WB_E_INVAL, "client or out is NULL");
  int rc = check_struct_size(out->struct_size, sizeof(wb_broker_info), "wb_broker_info");
  if (rc != WB_OK || (rc = client->connection.check_broker()) != WB_OK) return rc;
  census::broker_info(client->seg, out);
  return WB_OK;
} catch (...) {
  return wb::abi_error(__func__);
}
