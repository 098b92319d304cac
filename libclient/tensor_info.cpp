// A registry tensor as the public wb_tensor_info (tensor_info.hpp).
#include "tensor_info.hpp"

#include <cstring>

namespace wb {

void describe_tensor(const shm::Segment &seg, uint32_t tensor_slot, uint32_t position, wb_tensor_info *info) {
  const shm::Tensor &e = seg.tensor(tensor_slot);
  const shm::Tensor &root = seg.tensor(e.root);
  info->index = position;
  info->name = e.name;
  info->dtype = e.dtype;
  info->ndim = e.ndim;
  memcpy(info->shape, e.shape, sizeof(info->shape));
  memcpy(info->strides, e.strides, sizeof(info->strides));
  info->nbytes = e.nbytes;
  info->data = nullptr;
  info->device_type = root.device_type;
  info->is_view = e.is_view;
  // A sharded topic's logical tensor has no storage (allocation kNone): its shards are on their own devices.
  if (root.allocation < seg.caps().max_allocations) {
    memcpy(info->device_uuid, seg.allocation(root.allocation).device_uuid, sizeof(info->device_uuid));
  } else {
    memset(info->device_uuid, 0, sizeof(info->device_uuid));
  }
  uint64_t newest = 0;
  for (uint32_t r = 0; r < WB_MAX_REPLICAS; ++r) {
    uint64_t word = root.replica_version[r].load(std::memory_order_acquire);
    if (word != shm::kNeverWritten && !(word & shm::kWritingBit) && word > newest) newest = word;
  }
  info->version = newest;
}

}  // namespace wb
