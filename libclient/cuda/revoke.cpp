// Revocation: the exporter takes a CUDA allocation back. The broker marks it revoked at once (readers get
// WB_E_STALE and drop their imports); the call returns when the broker's count of importers reaches 0, and only
// then frees memory the library owns, so that no process maps freed memory.
#include <set>
#include <string>

#include "client.hpp"
#include "topic.hpp"
#include "client_state.hpp"
#include "clock.hpp"
#include "error.hpp"
#include "futex.hpp"

namespace wb::cuda {

namespace {

// How often a waiting exporter checks that the broker lives.
constexpr int64_t kSliceNs = 100'000'000;

int wait_unmapped(wb_client *client, const char *name, uint32_t slot, const Deadline &deadline, int64_t timeout_ms) {
  std::atomic<uint32_t> &importers = client->seg.allocation(slot).importers;
  for (;;) {
    uint32_t n = importers.load(std::memory_order_seq_cst);
    if (n == 0) return WB_OK;
    if (int rc = client->connection.await_broker(deadline); rc != WB_OK) return rc;  // only a broker lowers the count
    int64_t remaining = deadline.remaining_ns();
    if (remaining == 0) {
      return fail(WB_E_TIMEOUT,
                  "tensor '%s': %u process(es) still map its CUDA allocation %u after %lld ms; it stays "
                  "revoked (call again to wait for them)",
                  name, n, slot, (long long)timeout_ms);
    }
    futex_wait(&importers, n, remaining < 0 ? kSliceNs : std::min(remaining, kSliceNs));
  }
}

}  // namespace

}  // namespace wb::cuda

using namespace wb;

extern "C" WB_API int wb_tensor_revoke(wb_topic *topic, const char *name, int64_t timeout_ms) try {
  if (topic == nullptr) return fail(WB_E_INVAL, "topic is NULL");
  if (!topic->publisher) return fail(WB_E_ROLE, "only the publisher of '%s' may revoke tensors", topic->entry->name);
  cuda::ClientState *state = nullptr;
  uint32_t tensor_slot = 0, position = 0;
  int rc = cuda::client_state(topic->client, &state);
  if (rc != WB_OK || (rc = topic->tensors.find(name, &tensor_slot, &position)) != WB_OK) return rc;
  const shm::Segment &seg = topic->client->seg;
  const shm::Tensor &root = seg.tensor(seg.tensor(tensor_slot).root);
  if (root.device_type != WB_DEVICE_CUDA) {
    return fail(WB_E_INVAL, "'%s' is a host tensor: its memory belongs to the broker and needs no revocation", name);
  }
  std::set<uint32_t> allocations(root.replica_allocation, root.replica_allocation + topic->entry->replicas);
  Deadline deadline(timeout_ms);
  if ((rc = topic->client->connection.await_broker(deadline)) != WB_OK) return rc;
  for (uint32_t slot : allocations) {
    uint32_t importers = 0;
    if ((rc = cuda::revoke_allocation(topic->client->connection, slot, &importers)) != WB_OK) return rc;
  }
  for (uint32_t slot : allocations) {
    if ((rc = cuda::wait_unmapped(topic->client, name, slot, deadline, timeout_ms)) != WB_OK) return rc;
    state->exports.forget(slot);
  }
  return WB_OK;
} catch (...) {
  return wb::abi_error(__func__);
}
