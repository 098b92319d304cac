// weightbus-owned CUDA tensors: one VMM allocation per call, the tensors packed WB_CUDA_ALIGNMENT apart, R
// replicas back to back, exported as a POSIX fd that the broker keeps.
#include <algorithm>
#include <cstdio>
#include <cstring>

#include "client.hpp"
#include "struct_size.hpp"
#include "tensor_spec.hpp"
#include "topic.hpp"
#include "client_state.hpp"
#include "device.hpp"
#include "error.hpp"
#include "geometry.hpp"

namespace wb::cuda {

namespace {

uint64_t align_up(uint64_t value) { return (value + WB_CUDA_ALIGNMENT - 1) / WB_CUDA_ALIGNMENT * WB_CUDA_ALIGNMENT; }

bool same_shape(uint32_t ndim, const int64_t *shape, const shm::Tensor &e) {
  return e.ndim == ndim && std::equal(shape, shape + ndim, e.shape);
}

// Whether this handle's rank registered shard box `r` already: its logical entry's chain holds it.
bool rank_holds(wb_topic *topic, uint32_t logical, const TensorRequest &r) {
  const shm::Segment &seg = topic->client->seg;
  const shm::Tensor &l = seg.tensor(logical);
  uint32_t count = l.shard_count.load(std::memory_order_acquire);
  uint32_t end = std::min(seg.header().tensor_count.load(std::memory_order_acquire), seg.caps().max_tensors);
  uint32_t s = l.first_shard;
  for (uint32_t n = 0; n < count && s < end; ++n, s = seg.tensor(s).next_shard.load(std::memory_order_acquire)) {
    const shm::Tensor &shard = seg.tensor(s);
    if (shard.rank == topic->rank && same_shape(r.ndim, r.shape, shard) &&
        std::equal(r.shard->offset, r.shard->offset + r.ndim, shard.region_offset)) {
      return true;
    }
  }
  return false;
}

// The requests to allocate: those whose name is new (for a shard: whose box its rank has not registered). A
// name that exists with the same dtype and shape keeps its storage, as with wb_tensor_alloc; with another
// definition it is WB_E_EXISTS. The broker checks shards against the other ranks'.
int new_requests(wb_topic *topic, const std::vector<TensorRequest> &requests, std::vector<uint32_t> *fresh) {
  const shm::Segment &seg = topic->client->seg;
  for (uint32_t i = 0; i < requests.size(); ++i) {
    const TensorRequest &r = requests[i];
    uint32_t tensor_slot = 0, position = 0;
    if (topic->tensors.find(r.name, &tensor_slot, &position) != WB_OK) {
      fresh->push_back(i);
      continue;
    }
    if (r.shard != nullptr) {
      if (!rank_holds(topic, tensor_slot, r)) fresh->push_back(i);
      continue;
    }
    const shm::Tensor &e = seg.tensor(tensor_slot);
    bool same = !e.is_view && e.device_type == WB_DEVICE_CUDA && e.dtype == r.dtype && same_shape(r.ndim, r.shape, e);
    if (!same) return fail(WB_E_EXISTS, "tensor '%s' exists with another dtype, shape or device", r.name);
  }
  return WB_OK;
}

int alloc_cuda(wb_topic *topic, const std::vector<TensorRequest> &requests, int32_t device) {
  ClientState *state = nullptr;
  int gpus = 0;
  int rc = client_state(topic->client, &state);
  if (rc == WB_OK) rc = device_count(&gpus);
  if (rc != WB_OK) return rc;
  if (device < 0 || device >= gpus) {
    return fail(WB_E_INVAL, "CUDA device %d does not exist: this process sees %d GPU(s)", device, gpus);
  }
  std::vector<uint32_t> fresh;
  if ((rc = new_requests(topic, requests, &fresh)) != WB_OK || fresh.empty()) return rc;
  uint32_t replicas = topic->entry->replicas;
  std::vector<Placement> placements;
  uint64_t replica_bytes = 0;
  for (uint32_t i : fresh) {
    uint64_t nbytes;
    geometry::contiguous_bytes(requests[i].dtype, requests[i].ndim, requests[i].shape, &nbytes);
    Placement p;
    p.spec = i;
    p.offset[0] = replica_bytes;
    placements.push_back(p);
    replica_bytes += align_up(nbytes);
  }
  Owned owned;
  NewAllocation a;
  a.chunks.push_back(Chunk{-1, 0});
  if ((rc = alloc_owned(device, replica_bytes * replicas, &owned, &a.chunks[0].fd)) != WB_OK) return rc;
  a.topic = topic->slot;
  a.kind = shm::AllocationKind::kCudaVmm;
  a.size = a.chunks[0].size = owned.size;
  a.base = owned.base;
  uuid_of(device, a.device_uuid);
  // Failures from here on, running out of memory included, give the memory back.
  uint32_t slot = 0;
  if ((rc = catching("wb_tensor_alloc_cuda", [&] { return state->exports.add(a, owned, &slot); })) != WB_OK) {
    free_owned(owned);
    return rc;
  }
  for (Placement &p : placements) {
    for (uint32_t r = 0; r < replicas; ++r) {
      p.allocation[r] = slot;
      p.offset[r] = r * replica_bytes + p.offset[0];
    }
  }
  if ((rc = catching("wb_tensor_alloc_cuda", [&] { return register_tensors(topic, requests, placements); })) != WB_OK) {
    char message[512];  // not a std::string: the failure may be running out of memory
    snprintf(message, sizeof(message), "%s", wb_last_error());
    uint32_t importers = 0;
    revoke_allocation(topic->client->connection, slot, &importers);  // nobody imported it: no tensor referred to it
    state->exports.forget(slot);
    return fail(rc, "%s", message);
  }
  return WB_OK;
}

}  // namespace

}  // namespace wb::cuda

using namespace wb;

extern "C" WB_API int wb_tensor_alloc_cuda(wb_topic *topic, const wb_tensor_spec *specs, uint32_t count,
                                           int32_t device) try {
  if (topic == nullptr) return fail(WB_E_INVAL, "topic is NULL");
  std::vector<TensorRequest> requests;
  int rc = read_requests(specs, count, &requests);
  if (rc != WB_OK) return rc;
  if (!topic->publisher) return fail(WB_E_ROLE, "only the publisher of '%s' may allocate tensors", topic->entry->name);
  return cuda::alloc_cuda(topic, requests, device);
} catch (...) {
  return wb::abi_error(__func__);
}

extern "C" WB_API int wb_shard_alloc_cuda(wb_topic *topic, const wb_shard_spec *specs, uint32_t count,
                                          int32_t device) try {
  if (topic == nullptr) return fail(WB_E_INVAL, "topic is NULL");
  std::vector<TensorRequest> requests;
  int rc = read_requests(specs, count, &requests);
  if (rc != WB_OK || (rc = check_rank_publisher(topic, "wb_shard_alloc_cuda registers a rank's shards")) != WB_OK) {
    return rc;
  }
  return cuda::alloc_cuda(topic, requests, device);
} catch (...) {
  return wb::abi_error(__func__);
}
