// Where a replica's bytes are in this process: host tensors in a mapped shared-memory object, CUDA tensors in an
// imported (or, for their exporter, its own) device allocation.
#include "client.hpp"
#include "cuda/hooks.hpp"
#include "storage.hpp"

namespace wb {

int replica_base(wb_client *client, const shm::Tensor &root, uint32_t replica, bool writable, char **base) {
  if (root.device_type == WB_DEVICE_CUDA) return cuda::import_base(client, root.replica_allocation[replica], base);
  return client->allocations.map(root.allocation, writable, base);
}

}  // namespace wb
