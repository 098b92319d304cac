// The registry's CUDA allocations: the broker checks and stores what exporters send (handles, chunk fds,
// offsets) and never calls CUDA itself. Every operation checks everything before it changes anything.
#include <algorithm>
#include <cstring>
#include <string>
#include <unordered_set>

#include "error.hpp"
#include "futex.hpp"
#include "geometry.hpp"
#include "registry.hpp"
#include "scope_exit.hpp"
#include "wire.hpp"

namespace wb::broker {

namespace {

constexpr uint64_t kMaxAllocationSize = 1ull << 48;
constexpr uint32_t kMaxChunks = 1u << 20;

bool is_cuda(uint32_t kind) {
  return kind == uint32_t(shm::AllocationKind::kCudaIpc) || kind == uint32_t(shm::AllocationKind::kCudaVmm);
}

bool exported_by(const shm::Segment &seg, const shm::Allocation &a, uint32_t client) {
  return a.exporter_client == client && a.exporter_generation == seg.client(client).generation;
}

int not_live(uint32_t allocation, uint32_t state) {
  if (state == uint32_t(shm::AllocationState::kPending)) {
    return fail(WB_E_STATE, "CUDA allocation %u is still waiting for its chunks", allocation);
  }
  if (state == uint32_t(shm::AllocationState::kRevoked)) {
    return fail(WB_E_STALE, "CUDA allocation %u was revoked", allocation);
  }
  return fail(WB_E_STALE, "CUDA allocation %u died with its exporter", allocation);
}

int check_new_allocation(const NewCudaAllocation &a) {
  bool vmm = a.kind == uint32_t(shm::AllocationKind::kCudaVmm);
  if (!is_cuda(a.kind)) return fail(WB_E_INVAL, "unknown CUDA allocation kind %u", a.kind);
  if (a.size == 0 || a.size > kMaxAllocationSize) {
    return fail(WB_E_SIZE, "CUDA allocation of %llu bytes (must be 1 byte to 256 TiB)", (unsigned long long)a.size);
  }
  if (a.device_uuid.size() != 16) return fail(WB_E_INVAL, "a GPU UUID has 16 bytes, not %zu", a.device_uuid.size());
  if (vmm && (!a.ipc_handle.empty() || a.chunk_count == 0 || a.chunk_count > kMaxChunks || a.chunk_count > a.size)) {
    return fail(WB_E_INVAL, "a VMM allocation has 1..%u chunks and no IPC handle (got %u chunks)", kMaxChunks,
                a.chunk_count);
  }
  if (!vmm && (a.ipc_handle.size() != sizeof(shm::Allocation::ipc_handle) || a.chunk_count != 0)) {
    return fail(WB_E_INVAL, "a legacy IPC allocation has a %zu-byte handle and no chunks (got %zu bytes, %u chunks)",
                sizeof(shm::Allocation::ipc_handle), a.ipc_handle.size(), a.chunk_count);
  }
  return WB_OK;
}

}  // namespace

int Registry::check_cuda_allocation(uint32_t allocation, shm::Allocation **out) const {
  if (!is_cuda_allocation(allocation)) {
    return fail(WB_E_NOT_FOUND, "no CUDA allocation with index %u", allocation);
  }
  *out = &seg_.allocation(allocation);
  return WB_OK;
}

int Registry::register_cuda_allocation(const NewCudaAllocation &a, uint32_t client, uint32_t pid, uint32_t *slot) {
  int rc = check_new_allocation(a);
  if (rc != WB_OK) return rc;
  shm::Header &h = seg_.header();
  uint32_t i = h.allocation_count.load();
  if (i >= seg_.caps().max_allocations) {
    return fail(WB_E_NOSPC, "the allocation table is full (%u; see weightbusd --max-allocations)",
                seg_.caps().max_allocations);
  }
  Quota taken{.allocations = 1, .chunks = a.chunk_count};
  if ((rc = check_quota(client, taken)) != WB_OK) return rc;
  bool vmm = a.kind == uint32_t(shm::AllocationKind::kCudaVmm);
  shm::Allocation &e = seg_.allocation(i);
  e.topic = a.topic;
  e.size = a.size;
  e.generation = next_generation_++;
  e.creator_pid = pid;
  memcpy(e.device_uuid, a.device_uuid.data(), sizeof(e.device_uuid));
  shm::set_allocation_state(seg_, e, vmm ? shm::AllocationState::kPending : shm::AllocationState::kLive);
  e.importers.store(0);
  e.exporter_client = client;
  e.exporter_generation = seg_.client(client).generation;
  e.exporter_base = a.base;
  e.chunk_count = a.chunk_count;
  if (!vmm) memcpy(e.ipc_handle, a.ipc_handle.data(), sizeof(e.ipc_handle));
  e.kind.store(a.kind, std::memory_order_release);
  h.allocation_count.store(i + 1, std::memory_order_release);
  charge(client, taken);
  *slot = i;
  return WB_OK;
}

int Registry::add_allocation_chunks(uint32_t allocation, uint32_t client, uint32_t first,
                                    const std::vector<uint64_t> &sizes, std::vector<int> &fds) {
  shm::Allocation *a = nullptr;
  int rc = check_cuda_allocation(allocation, &a);
  if (rc != WB_OK) return rc;
  if (a->kind.load() != uint32_t(shm::AllocationKind::kCudaVmm) || !exported_by(seg_, *a, client)) {
    return fail(WB_E_INVAL, "allocation %u is not a VMM allocation this client registered", allocation);
  }
  if (a->state.load() != uint32_t(shm::AllocationState::kPending)) {
    return fail(WB_E_STATE, "allocation %u takes no more chunks (it has them all, or was revoked)", allocation);
  }
  std::vector<CudaChunk> &have = cuda_chunks_[allocation];
  if (fds.empty() || fds.size() != sizes.size() || fds.size() > size_t(wire::kMaxFds)) {
    return fail(WB_E_PROTOCOL, "AddAllocationChunks carries %zu fds for %zu sizes (1..%d of each)", fds.size(),
                sizes.size(), wire::kMaxFds);
  }
  if (first != have.size() || first + sizes.size() > a->chunk_count) {
    return fail(WB_E_INVAL, "allocation %u: chunks %u..%zu sent, but it has %zu of %u", allocation, first,
                first + sizes.size() - 1, have.size(), a->chunk_count);
  }
  uint64_t offset = have.empty() ? 0 : have.back().offset + have.back().size;
  uint64_t end = offset;
  for (uint64_t size : sizes) {
    if (size == 0 || size > a->size - end) {
      return fail(WB_E_SIZE, "allocation %u: a chunk of %llu bytes at %llu overruns its %llu bytes", allocation,
                  (unsigned long long)size, (unsigned long long)end, (unsigned long long)a->size);
    }
    end += size;
  }
  bool complete = first + sizes.size() == a->chunk_count;
  if (complete && end != a->size) {
    return fail(WB_E_SIZE, "allocation %u: its chunks cover %llu of its %llu bytes", allocation,
                (unsigned long long)end, (unsigned long long)a->size);
  }
  if ((rc = descriptors_.check(sizes.size(), "keeping a CUDA chunk's fd")) != WB_OK) return rc;
  have.reserve(have.size() + sizes.size());  // a chunk taken below must not be left in fds as well
  for (size_t i = 0; i < sizes.size(); ++i) {
    have.emplace_back(fds[i], offset, sizes[i]);
    offset += sizes[i];
  }
  descriptors_.hold(sizes.size());
  fds.clear();  // kept
  if (complete) shm::set_allocation_state(seg_, *a, shm::AllocationState::kLive);
  return WB_OK;
}

int Registry::check_registered(uint32_t topic, uint32_t client, const NewRegisteredTensor &t) const {
  const shm::Topic &tp = seg_.topic(topic);
  uint64_t nbytes;
  int rc = geometry::check_name(t.name.data(), t.name.size(), "tensor");
  if (rc == WB_OK) rc = geometry::contiguous_bytes(t.dtype, uint32_t(t.shape.size()), t.shape.data(), &nbytes);
  if (rc != WB_OK) return fail(rc, "tensor '%.255s': %s", t.name.c_str(), wb_last_error());
  uint32_t existing;
  if (find_tensor(topic, t.name, &existing) == WB_OK) {
    return fail(WB_E_EXISTS, "topic '%s' already has a tensor '%s'", tp.name, t.name.c_str());
  }
  if (t.shard.present) {
    return fail(WB_E_INVAL, "topic '%s' is not sharded: tensor '%s' has a shard region", tp.name, t.name.c_str());
  }
  if (tp.latest.load() > 0) {
    return fail(WB_E_STATE, "topic '%s' is sealed by its first publish: cannot add tensor '%s'", tp.name,
                t.name.c_str());
  }
  return check_replicas(topic, client, t, nbytes);
}

// Where a registered tensor's replicas are: live CUDA allocations this client exported for the topic, one GPU,
// each holding the tensor's nbytes at its offset.
int Registry::check_replicas(uint32_t topic, uint32_t client, const NewRegisteredTensor &t, uint64_t nbytes) const {
  const shm::Topic &tp = seg_.topic(topic);
  int rc;
  if (t.allocations.size() != tp.replicas || t.offsets.size() != tp.replicas) {
    return fail(WB_E_INVAL, "tensor '%s': %zu allocations and %zu offsets for a topic of %u replicas", t.name.c_str(),
                t.allocations.size(), t.offsets.size(), tp.replicas);
  }
  for (size_t r = 0; r < t.allocations.size(); ++r) {
    shm::Allocation *a = nullptr;
    if ((rc = check_cuda_allocation(t.allocations[r], &a)) != WB_OK) return rc;
    uint32_t state = a->state.load();
    if (state != uint32_t(shm::AllocationState::kLive)) return not_live(t.allocations[r], state);
    if (a->topic != topic || !exported_by(seg_, *a, client)) {
      return fail(WB_E_INVAL, "tensor '%s': allocation %u was not registered by this client for topic '%s'",
                  t.name.c_str(), t.allocations[r], tp.name);
    }
    if (memcmp(a->device_uuid, seg_.allocation(t.allocations[0]).device_uuid, sizeof(a->device_uuid)) != 0) {
      return fail(WB_E_INVAL, "tensor '%s': replica %zu is on another GPU than replica 0", t.name.c_str(), r);
    }
    if (t.offsets[r] > a->size || nbytes > a->size - t.offsets[r]) {
      return fail(WB_E_SIZE, "tensor '%s': %llu bytes at offset %llu overrun allocation %u of %llu bytes",
                  t.name.c_str(), (unsigned long long)nbytes, (unsigned long long)t.offsets[r], t.allocations[r],
                  (unsigned long long)a->size);
    }
  }
  return WB_OK;
}

// A sharded topic's shards where they are: checked as wb_shard_alloc's (check_new_shards), and their replicas as a
// plain tensor's. A box its rank registered already keeps its storage.
int Registry::register_shards(uint32_t topic, uint32_t client, const std::vector<NewRegisteredTensor> &tensors) {
  shm::Topic &tp = seg_.topic(topic);
  uint32_t rank = rank_of(topic, client);
  std::vector<NewTensor> specs;
  for (const NewRegisteredTensor &t : tensors) specs.push_back(NewTensor{t.name, t.dtype, t.shape, t.shard});
  ShardPlan plan;
  if (int rc = check_new_shards(topic, rank, specs, &plan); rc != WB_OK) return rc;
  uint64_t bytes = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (!plan.is_new[i]) continue;
    uint64_t nbytes;
    geometry::contiguous_bytes(tensors[i].dtype, uint32_t(tensors[i].shape.size()), tensors[i].shape.data(), &nbytes);
    if (int rc = check_replicas(topic, client, tensors[i], nbytes); rc != WB_OK) return rc;
    bytes += nbytes * tp.replicas;
  }
  Quota taken{.tensors = plan.entries};
  if (int rc = check_quota(client, taken); rc != WB_OK) return rc;
  std::vector<TensorPlacement> placements(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (!plan.is_new[i]) continue;
    const NewRegisteredTensor &t = tensors[i];
    placements[i].allocation = t.allocations[0];
    placements[i].device_type = WB_DEVICE_CUDA;
    for (uint32_t r = 0; r < WB_MAX_REPLICAS; ++r) {
      bool used = r < tp.replicas;
      placements[i].replica_allocation[r] = used ? t.allocations[r] : t.allocations[0];
      placements[i].replica_offset[r] = used ? t.offsets[r] : 0;
    }
  }
  uint32_t first = seg_.header().tensor_count.load();
  ScopeExit forget_names([&] { forget_names_from(topic, first); });
  enter_logical_names(topic, specs, plan);
  forget_names.release();  // nothing below may fail for want of memory
  append_shards(topic, rank, specs, plan, placements);
  seg_.rank(tp.first_rank + rank).bytes.fetch_add(bytes);
  tp.bytes.fetch_add(bytes);
  tp.layout_gen.fetch_add(1, std::memory_order_release);
  charge(client, taken);
  return WB_OK;
}

int Registry::register_tensors(uint32_t topic, uint32_t client, const std::vector<NewRegisteredTensor> &tensors) {
  if (seg_.topic(topic).ranks > 0) return register_shards(topic, client, tensors);
  std::unordered_set<std::string> seen;
  for (const NewRegisteredTensor &t : tensors) {
    if (int rc = check_registered(topic, client, t); rc != WB_OK) return rc;
    if (!seen.insert(t.name).second) {
      return fail(WB_E_EXISTS, "tensor '%s' appears twice in one request", t.name.c_str());
    }
  }
  shm::Header &h = seg_.header();
  if (h.tensor_count.load() + tensors.size() > seg_.caps().max_tensors) {
    return fail(WB_E_NOSPC, "the tensor table is full (%u entries; see weightbusd --max-tensors)",
                seg_.caps().max_tensors);
  }
  Quota taken{.tensors = uint32_t(tensors.size())};
  if (int rc = check_quota(client, taken); rc != WB_OK) return rc;
  uint32_t first = h.tensor_count.load();
  ScopeExit forget_names([&] { forget_names_from(topic, first); });
  for (size_t k = 0; k < tensors.size(); ++k) tensors_by_name_[topic].emplace(tensors[k].name, first + uint32_t(k));
  forget_names.release();  // nothing below may fail for want of memory
  shm::Topic &tp = seg_.topic(topic);
  for (const NewRegisteredTensor &t : tensors) {
    TensorPlacement placement{.allocation = t.allocations[0], .device_type = WB_DEVICE_CUDA};
    for (uint32_t r = 0; r < WB_MAX_REPLICAS; ++r) {
      bool used = r < tp.replicas;
      placement.replica_allocation[r] = used ? t.allocations[r] : t.allocations[0];
      placement.replica_offset[r] = used ? t.offsets[r] : 0;
    }
    uint32_t slot = append_tensor(topic, t.name, t.dtype, t.shape, {}, placement);
    tp.bytes.fetch_add(seg_.tensor(slot).nbytes * tp.replicas);
  }
  tp.layout_gen.fetch_add(1, std::memory_order_release);
  charge(client, taken);
  return WB_OK;
}

int Registry::revoke_allocation(uint32_t allocation, uint32_t client, uint32_t *importers) {
  shm::Allocation *a = nullptr;
  int rc = check_cuda_allocation(allocation, &a);
  if (rc != WB_OK) return rc;
  if (!exported_by(seg_, *a, client) && !is_publisher(a->topic, client)) {
    return fail(WB_E_ROLE, "only the exporter of CUDA allocation %u or the publisher of its topic may revoke it",
                allocation);
  }
  uint32_t state = a->state.load();
  if (state == uint32_t(shm::AllocationState::kLive) || state == uint32_t(shm::AllocationState::kPending)) {
    shm::set_allocation_state(seg_, *a, shm::AllocationState::kRevoked);
    drop_chunks(allocation);  // importers hold their own mappings; no new ones
  }
  *importers = a->importers.load();
  return WB_OK;
}

void Registry::revoke_cuda_allocations(uint32_t topic) {
  for (uint32_t a = 0; a < seg_.header().allocation_count.load(); ++a) {
    shm::Allocation &alloc = seg_.allocation(a);
    if (alloc.topic != topic || !is_cuda(alloc.kind.load())) continue;
    uint32_t state = alloc.state.load();
    if (state == uint32_t(shm::AllocationState::kLive) || state == uint32_t(shm::AllocationState::kPending)) {
      shm::set_allocation_state(seg_, alloc, shm::AllocationState::kRevoked);
    }
    drop_chunks(a);
  }
}

int Registry::import_chunk(uint32_t allocation, uint32_t chunk, int *fd, uint64_t *offset, uint64_t *size) const {
  shm::Allocation *a = nullptr;
  int rc = check_cuda_allocation(allocation, &a);
  if (rc != WB_OK) return rc;
  uint32_t state = a->state.load();
  if (state != uint32_t(shm::AllocationState::kLive)) return not_live(allocation, state);
  if (a->kind.load() == uint32_t(shm::AllocationKind::kCudaIpc)) {
    if (chunk != 0) return fail(WB_E_INVAL, "legacy IPC allocation %u has no chunk %u", allocation, chunk);
    *fd = -1;
    *offset = 0;
    *size = a->size;
    return WB_OK;
  }
  auto found = cuda_chunks_.find(allocation);
  if (found == cuda_chunks_.end() || chunk >= found->second.size()) {
    return fail(WB_E_INVAL, "VMM allocation %u has no chunk %u (it has %u)", allocation, chunk, a->chunk_count);
  }
  const CudaChunk &c = found->second[chunk];
  *fd = c.fd;
  *offset = c.offset;
  *size = c.size;
  return WB_OK;
}

void Registry::drop_chunks(uint32_t allocation) {
  auto found = cuda_chunks_.find(allocation);
  if (found == cuda_chunks_.end()) return;
  descriptors_.release(found->second.size());
  cuda_chunks_.erase(found);
}

bool Registry::is_cuda_allocation(uint32_t allocation) const {
  return allocation < seg_.header().allocation_count.load() && is_cuda(seg_.allocation(allocation).kind.load());
}

void Registry::add_importer(uint32_t allocation) { seg_.allocation(allocation).importers.fetch_add(1); }

void Registry::drop_importer(uint32_t allocation) {
  std::atomic<uint32_t> &importers = seg_.allocation(allocation).importers;
  importers.fetch_sub(1);
  futex_wake_all(&importers);
}

uint32_t Registry::exporter_gone(uint32_t client) {
  uint32_t died = 0;
  for (uint32_t i = 0; i < seg_.header().allocation_count.load(); ++i) {
    shm::Allocation &a = seg_.allocation(i);
    if (!is_cuda(a.kind.load()) || !exported_by(seg_, a, client)) continue;
    uint32_t state = a.state.load();
    bool pending = state == uint32_t(shm::AllocationState::kPending);
    bool legacy_live =
        a.kind.load() == uint32_t(shm::AllocationKind::kCudaIpc) && state == uint32_t(shm::AllocationState::kLive);
    if (!pending && !legacy_live) continue;
    shm::set_allocation_state(seg_, a, shm::AllocationState::kDead);
    drop_chunks(i);
    ++died;
  }
  return died;
}

}  // namespace wb::broker
