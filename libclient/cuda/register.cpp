// Registering existing GPU memory (e.g. PyTorch parameters) without copying: each pointer's allocation is
// located, exported once per topic, and the tensors registered as byte offsets into the exported allocations.
#include <cstring>
#include <map>
#include <string>

#include "client.hpp"
#include "struct_size.hpp"
#include "tensor_spec.hpp"
#include "topic.hpp"
#include "client_state.hpp"
#include "error.hpp"
#include "geometry.hpp"
#include "locate.hpp"

namespace wb::cuda {

namespace {

// Exports each distinct legacy block once, and each run of back-to-back VMM chunks of one GPU once (PyTorch's
// expandable segments map a model's parameters as many chunks in one address range).
int export_pending(Exports &exports, uint32_t topic_slot, const std::vector<Region> &pending) {
  std::map<CUdeviceptr, const Region *> blocks;
  std::map<CUdeviceptr, std::pair<Span, const Region *>> chunks;
  for (const Region &region : pending) {
    if (region.kind == shm::AllocationKind::kCudaIpc) blocks.emplace(region.whole.base, &region);
    for (const Span &c : region.chunks) chunks.emplace(c.base, std::pair{c, &region});
  }
  auto export_one = [&](const Region &region, const std::vector<Span> &run) {
    NewAllocation a;
    uint32_t slot = 0;
    int rc = export_region(region, run, topic_slot, &a);
    return rc != WB_OK ? rc : exports.add(a, Owned{}, &slot);
  };
  for (const auto &[base, region] : blocks) {
    if (int rc = export_one(*region, {}); rc != WB_OK) return rc;
  }
  std::vector<Span> run;
  const Region *first = nullptr;
  for (const auto &[base, entry] : chunks) {
    bool joins = !run.empty() && run.back().base + run.back().size == base && entry.second->ordinal == first->ordinal;
    if (!run.empty() && !joins) {
      if (int rc = export_one(*first, run); rc != WB_OK) return rc;
      run.clear();
    }
    if (run.empty()) first = entry.second;
    run.push_back(entry.first);
  }
  return run.empty() ? WB_OK : export_one(*first, run);
}

// Whether a legacy block found earlier in this call holds the range: no need to locate it again.
bool in_pending_block(const std::vector<Region> &pending, CUdeviceptr p, uint64_t bytes) {
  for (const Region &r : pending) {
    if (r.kind == shm::AllocationKind::kCudaIpc && p >= r.whole.base && p + bytes <= r.whole.base + r.whole.size) {
      return true;
    }
  }
  return false;
}

uint64_t spec_bytes(const TensorRequest &spec) {
  uint64_t nbytes = 0;
  geometry::contiguous_bytes(spec.dtype, spec.ndim, spec.shape, &nbytes);
  return nbytes;
}

int register_cuda(wb_topic *topic, const std::vector<TensorRequest> &specs, void *const *pointers) {
  uint32_t count = uint32_t(specs.size());
  ClientState *state = nullptr;
  int rc = client_state(topic->client, &state);
  if (rc != WB_OK) return rc;
  uint32_t replicas = topic->entry->replicas;
  std::vector<Region> pending;  // allocations not exported for the topic yet
  for (uint32_t k = 0; k < count * replicas; ++k) {
    const TensorRequest &spec = specs[k % count];
    CUdeviceptr p = reinterpret_cast<CUdeviceptr>(pointers[k]);
    uint32_t slot = 0;
    if (state->exports.find(topic->slot, p, spec_bytes(spec), &slot) ||
        in_pending_block(pending, p, spec_bytes(spec))) {
      continue;
    }
    Region region;
    if ((rc = locate(spec.name, p, spec_bytes(spec), &region)) != WB_OK) return rc;
    pending.push_back(std::move(region));
  }
  if ((rc = export_pending(state->exports, topic->slot, pending)) != WB_OK) return rc;
  const shm::Segment &seg = topic->client->seg;
  std::vector<Placement> placements(count);
  for (uint32_t k = 0; k < count * replicas; ++k) {
    uint32_t i = k % count, r = k / count;
    const TensorRequest &spec = specs[i];
    CUdeviceptr p = reinterpret_cast<CUdeviceptr>(pointers[k]);
    Placement &place = placements[i];
    place.spec = i;
    if (!state->exports.find(topic->slot, p, spec_bytes(spec), &place.allocation[r])) {
      return fail(WB_E_STALE, "tensor '%s': its CUDA allocation was revoked while being registered", spec.name);
    }
    const shm::Allocation &a = seg.allocation(place.allocation[r]);
    place.offset[r] = p - a.exporter_base;
    if (memcmp(a.device_uuid, seg.allocation(place.allocation[0]).device_uuid, sizeof(a.device_uuid)) != 0) {
      return fail(WB_E_INVAL, "tensor '%s': replica %u is on another GPU than replica 0", spec.name, r);
    }
  }
  return register_tensors(topic, specs, placements);
}

}  // namespace

}  // namespace wb::cuda

using namespace wb;

namespace wb::cuda {

namespace {

// Both entry points, once their specs are read and the caller's role checked.
int register_checked(wb_topic *topic, const std::vector<TensorRequest> &requests, void *const *pointers) {
  if (pointers == nullptr) return fail(WB_E_INVAL, "pointers is NULL");
  uint32_t count = uint32_t(requests.size());
  uint32_t replicas = topic->entry->replicas;
  for (uint32_t k = 0; k < count * replicas; ++k) {
    if (pointers[k] == nullptr) {
      return fail(WB_E_INVAL, "pointers[%u] (replica %u of '%s') is NULL", k, k / count, requests[k % count].name);
    }
  }
  return register_cuda(topic, requests, pointers);
}

}  // namespace

}  // namespace wb::cuda

extern "C" WB_API int wb_tensor_register_cuda(wb_topic *topic, const wb_tensor_spec *specs, void *const *pointers,
                                              uint32_t count) try {
  if (topic == nullptr) return fail(WB_E_INVAL, "topic is NULL");
  std::vector<TensorRequest> requests;
  int rc = read_requests(specs, count, &requests);
  if (rc != WB_OK) return rc;
  if (!topic->publisher) return fail(WB_E_ROLE, "only the publisher of '%s' may register tensors", topic->entry->name);
  return cuda::register_checked(topic, requests, pointers);
} catch (...) {
  return wb::abi_error(__func__);
}

extern "C" WB_API int wb_shard_register_cuda(wb_topic *topic, const wb_shard_spec *specs, void *const *pointers,
                                             uint32_t count) try {
  if (topic == nullptr) return fail(WB_E_INVAL, "topic is NULL");
  std::vector<TensorRequest> requests;
  int rc = read_requests(specs, count, &requests);
  if (rc != WB_OK || (rc = check_rank_publisher(topic, "wb_shard_register_cuda registers a rank's shards")) != WB_OK) {
    return rc;
  }
  return cuda::register_checked(topic, requests, pointers);
} catch (...) {
  return wb::abi_error(__func__);
}
