#include "imports.hpp"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

#include "connection.hpp"
#include "device.hpp"
#include "driver.hpp"
#include "error.hpp"
#include "process_id.hpp"
#include "scope_exit.hpp"
#include "wire.hpp"

namespace wb::cuda {

namespace {

// True when this process exported the allocation through a client that is still attached: its pointer is
// valid here as it is.
bool exported_here(const shm::Segment &seg, const shm::Allocation &a) {
  if (a.creator_pid != process_id() || a.exporter_client >= seg.caps().max_clients) return false;
  const shm::ClientSlot &slot = seg.client(a.exporter_client);
  return slot.state.load(std::memory_order_acquire) == uint32_t(shm::ClientState::kLive) &&
         slot.generation == a.exporter_generation && slot.pid == process_id();
}

int not_live(uint32_t slot, const shm::Allocation &a, uint32_t state) {
  std::string gpu = uuid_text(a.device_uuid);
  if (state == uint32_t(shm::AllocationState::kRevoked)) {
    return fail(WB_E_STALE, "CUDA allocation %u on %s was revoked by its exporter (pid %u)", slot, gpu.c_str(),
                a.creator_pid);
  }
  if (state == uint32_t(shm::AllocationState::kDead)) {
    return fail(WB_E_STALE,
                "CUDA allocation %u on %s is gone with its exporter (pid %u): legacy CUDA IPC memory "
                "does not outlive the process that exported it",
                slot, gpu.c_str(), a.creator_pid);
  }
  return fail(WB_E_STATE,
              "CUDA allocation %u waits for its exporter (pid %u) to send its chunks (it is registering it, or "
              "resuming after a broker restart): retry",
              slot, a.creator_pid);
}

// Live, or pending after a broker restart until its exporter resumes: mappings made before stay valid.
bool mapped_stays_valid(uint32_t state) {
  return state == uint32_t(shm::AllocationState::kLive) || state == uint32_t(shm::AllocationState::kPending);
}

int import_chunk(Connection &connection, uint32_t slot, uint32_t chunk, Reply *reply) {
  flatbuffers::FlatBufferBuilder builder;
  auto body = proto::CreateImportAllocation(builder, slot, chunk);
  return connection.call(builder, proto::Body::ImportAllocation, body.Union(), reply);
}

// Grants read-write access to the owning GPU and to every GPU that can reach it as a peer, so that copies
// may run on any of them.
int set_access(const Driver *d, CUdeviceptr va, uint64_t size, int owner) {
  int count = 0;
  int rc = device_count(&count);
  if (rc != WB_OK) return rc;
  std::vector<CUmemAccessDesc> access;
  CUdevice owner_dev;
  if ((rc = check(d->cuDeviceGet(&owner_dev, owner), "cuDeviceGet")) != WB_OK) return rc;
  for (int i = 0; i < count; ++i) {
    CUdevice dev;
    int peer = i == owner;
    if (i != owner && check(d->cuDeviceGet(&dev, i), "cuDeviceGet") == WB_OK) {
      d->cuDeviceCanAccessPeer(&peer, dev, owner_dev);
    }
    if (!peer) continue;
    CUmemAccessDesc desc{};
    desc.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
    desc.location.id = i;
    desc.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
    access.push_back(desc);
  }
  return check(d->cuMemSetAccess(va, size, access.data(), access.size()),
               "cuMemSetAccess of an imported VMM allocation");
}

}  // namespace

Imports::~Imports() {
  for (auto &[slot, imp] : imports_) unmap(imp);
}

int Imports::base(uint32_t slot, char **out) {
  const shm::Segment &seg = seg_;
  uint32_t count = std::min(seg.header().allocation_count.load(std::memory_order_acquire), seg.caps().max_allocations);
  if (slot >= count) return fail(WB_E_PROTOCOL, "a tensor refers to allocation %u, which does not exist", slot);
  const shm::Allocation &a = seg.allocation(slot);
  uint32_t kind = a.kind.load(std::memory_order_acquire);
  if (kind != uint32_t(shm::AllocationKind::kCudaIpc) && kind != uint32_t(shm::AllocationKind::kCudaVmm)) {
    return fail(WB_E_PROTOCOL, "a CUDA tensor refers to allocation %u, which is not a CUDA allocation", slot);
  }
  uint32_t state = a.state.load(std::memory_order_acquire);
  bool live = state == uint32_t(shm::AllocationState::kLive);
  if (!mapped_stays_valid(state)) {
    sweep();
    return not_live(slot, a, state);
  }
  if (exported_here(seg, a)) {
    *out = reinterpret_cast<char *>(a.exporter_base);
    return WB_OK;
  }
  std::lock_guard lock(mutex_);
  auto found = imports_.find(slot);
  if (found != imports_.end() && found->second.generation != a.generation) {  // the entry was reused
    unmap(found->second);
    release(slot);
    imports_.erase(found);
    note_open(slot, false);
    found = imports_.end();
  }
  if (found == imports_.end()) {
    if (!live) return not_live(slot, a, state);
    // Its entries first, withdrawn unless the import opens: once the broker counts it, keeping it cannot fail.
    found = imports_.try_emplace(slot).first;
    ScopeExit forget([this, found] { imports_.erase(found); });
    note_open(slot, true);
    ScopeExit unnote([this, slot] { note_open(slot, false); });
    if (int rc = open(slot, a, &found->second); rc != WB_OK) return rc;
    unnote.release();
    forget.release();
    swept_changes_ = UINT64_MAX;  // its state was read before the lock: the next sweep reads it again
  }
  *out = reinterpret_cast<char *>(found->second.base);
  return WB_OK;
}

int Imports::open(uint32_t slot, const shm::Allocation &a, Import *imp) {
  int ordinal = 0;
  CUcontext context = nullptr;
  int rc = ordinal_of(a.device_uuid, &ordinal);
  if (rc == WB_OK) rc = primary_context(ordinal, &context);
  ContextGuard guard;
  if (rc == WB_OK) rc = guard.push(context);
  if (rc != WB_OK) return rc;
  imp->generation = a.generation;
  imp->topic = a.topic;
  imp->size = a.size;
  imp->context = context;
  imp->vmm = a.kind.load(std::memory_order_acquire) == uint32_t(shm::AllocationKind::kCudaVmm);
  return imp->vmm ? open_vmm(slot, a, ordinal, imp) : open_legacy(slot, a, imp);
}

int Imports::open_legacy(uint32_t slot, const shm::Allocation &a, Import *imp) {
  const Driver *d = nullptr;
  int rc = driver(&d);
  Reply reply;
  if (rc != WB_OK || (rc = import_chunk(connection_, slot, 0, &reply)) != WB_OK) return rc;
  wire::close_all(reply.fds);
  CUipcMemHandle handle;
  static_assert(sizeof(handle.reserved) == sizeof(a.ipc_handle));
  memcpy(handle.reserved, a.ipc_handle, sizeof(handle.reserved));
  rc = check(d->cuIpcOpenMemHandle(&imp->base, handle, CU_IPC_MEM_LAZY_ENABLE_PEER_ACCESS), "cuIpcOpenMemHandle");
  if (rc != WB_OK) release(slot);
  return rc;
}

int Imports::open_vmm(uint32_t slot, const shm::Allocation &a, int ordinal, Import *imp) {
  const Driver *d = nullptr;
  int rc = driver(&d);
  if (rc != WB_OK ||
      (rc = check(d->cuMemAddressReserve(&imp->base, a.size, 0, 0, 0), "cuMemAddressReserve")) != WB_OK) {
    return rc;
  }
  uint64_t mapped = 0;
  bool counted = false;  // the broker counts us among the importers from our first chunk on
  // What follows runs out of memory as an error code, so that the cleanup below undoes the import so far.
  rc = catching("importing a CUDA allocation", [&] {
    imp->chunks.reserve(a.chunk_count);
    return WB_OK;
  });
  for (uint32_t c = 0; rc == WB_OK && c < a.chunk_count; ++c) {
    Reply reply;
    rc = catching("importing a CUDA allocation", [&] { return import_chunk(connection_, slot, c, &reply); });
    if (rc != WB_OK) break;
    counted = true;
    if (reply.fds.size() != 1 || reply.value != mapped || reply.size == 0 || reply.size > a.size - mapped) {
      wire::close_all(reply.fds);
      rc = fail(WB_E_PROTOCOL, "the broker answered ImportAllocation %u chunk %u with a bad chunk", slot, c);
      break;
    }
    CUmemGenericAllocationHandle handle;
    rc = check(d->cuMemImportFromShareableHandle(&handle, reinterpret_cast<void *>(uintptr_t(reply.fds[0])),
                                                 CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR),
               "cuMemImportFromShareableHandle");
    wire::close_all(reply.fds);
    if (rc != WB_OK) break;
    rc = check(d->cuMemMap(imp->base + mapped, reply.size, 0, handle, 0), "cuMemMap of an imported VMM chunk");
    d->cuMemRelease(handle);  // the mapping keeps the memory; unmapping frees our hold on it
    if (rc != WB_OK) break;
    imp->chunks.push_back(reply.size);
    mapped += reply.size;
  }
  if (rc == WB_OK && mapped != a.size) {
    rc = fail(WB_E_PROTOCOL, "allocation %u: its chunks cover %llu of its %llu bytes", slot,
              (unsigned long long)mapped, (unsigned long long)a.size);
  }
  if (rc == WB_OK) {
    rc = catching("importing a CUDA allocation", [&] { return set_access(d, imp->base, a.size, ordinal); });
  }
  if (rc != WB_OK) {
    unmap(*imp);
    if (counted) release(slot);
  }
  return rc;
}

void Imports::unmap(const Import &imp) {
  const Driver *d = nullptr;
  ContextGuard guard;
  if (driver(&d) != WB_OK || guard.push(imp.context) != WB_OK) return;
  if (!imp.vmm) {
    d->cuIpcCloseMemHandle(imp.base);
    return;
  }
  uint64_t offset = 0;
  for (uint64_t size : imp.chunks) {
    d->cuMemUnmap(imp.base + offset, size);
    offset += size;
  }
  d->cuMemAddressFree(imp.base, imp.size);
}

// Cannot throw, as it undoes failures: running out of memory leaves the broker counting this client until it
// detaches.
void Imports::release(uint32_t slot) {
  char message[512];  // a failed open reports its own error, not the release's
  snprintf(message, sizeof(message), "%s", wb_last_error());
  catching("releasing a CUDA import", [&] {
    flatbuffers::FlatBufferBuilder builder;
    auto body = proto::CreateReleaseAllocation(builder, slot);
    Reply reply;
    return connection_.call(builder, proto::Body::ReleaseAllocation, body.Union(), &reply);
  });
  fail(WB_OK, "%s", message);
}

void Imports::sweep() {
  if (open_count_.load(std::memory_order_relaxed) == 0) return;
  const shm::Segment &seg = seg_;
  std::vector<std::pair<uint32_t, Import>> closing;
  {
    std::lock_guard lock(mutex_);
    // Reading every import's state costs a cache miss each (0.1 ms for a thousand): skipped when the broker
    // changed none since the last sweep. Loaded before the states, so a change after it is seen next time.
    uint64_t changes = seg.header().allocation_changes.load(std::memory_order_acquire);
    if (changes == swept_changes_ && !pinned_left_) return;
    swept_changes_ = changes;
    pinned_left_ = false;
    closing.reserve(imports_.size());  // an import taken out below must reach its release
    for (auto it = imports_.begin(); it != imports_.end();) {
      uint32_t state = seg.allocation(it->first).state.load(std::memory_order_acquire);
      if (mapped_stays_valid(state)) {
        ++it;
        continue;
      }
      if (pins_.pinned(pins_.context, it->second.topic)) {
        pinned_left_ = true;
        ++it;
        continue;
      }
      closing.emplace_back(it->first, std::move(it->second));
      note_open(it->first, false);
      it = imports_.erase(it);
    }
  }
  for (auto &[slot, imp] : closing) {
    unmap(imp);
    release(slot);
  }
}

void Imports::note_open(uint32_t slot, bool open) {
  std::lock_guard lock(open_mutex_);
  if (open) {
    open_.insert(slot);
    open_count_.fetch_add(1, std::memory_order_relaxed);
  } else {
    open_.erase(slot);
    open_count_.fetch_sub(1, std::memory_order_relaxed);
  }
}

std::vector<uint32_t> Imports::open_allocations() {
  std::lock_guard lock(open_mutex_);
  return {open_.begin(), open_.end()};
}

}  // namespace wb::cuda
