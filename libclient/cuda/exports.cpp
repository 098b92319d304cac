#include "exports.hpp"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>

#include "client.hpp"
#include "tensor_spec.hpp"
#include "topic.hpp"
#include "device.hpp"
#include "driver.hpp"
#include "error.hpp"
#include "scope_exit.hpp"
#include "wire.hpp"

namespace wb::cuda {

namespace {

// Tensors per RegisterTensors message: keeps each message well under wire::kMaxMessage.
constexpr uint32_t kTensorsPerMessage = 128;

void close_chunks(NewAllocation &a) {
  for (Chunk &c : a.chunks) {
    if (c.fd >= 0) close(c.fd);
    c.fd = -1;
  }
}

int send_chunks(Connection &connection, uint32_t slot, const NewAllocation &a) {
  for (size_t first = 0; first < a.chunks.size(); first += wire::kMaxFds) {
    size_t n = std::min<size_t>(wire::kMaxFds, a.chunks.size() - first);
    std::vector<int> fds;
    std::vector<uint64_t> sizes;
    for (size_t i = first; i < first + n; ++i) {
      fds.push_back(a.chunks[i].fd);
      sizes.push_back(a.chunks[i].size);
    }
    flatbuffers::FlatBufferBuilder builder;
    auto body = proto::CreateAddAllocationChunksDirect(builder, slot, uint32_t(first), &sizes);
    Reply reply;
    int rc = connection.call(builder, proto::Body::AddAllocationChunks, body.Union(), &reply, fds.data(), int(n));
    if (rc != WB_OK) return rc;
  }
  return WB_OK;
}

int send_allocation(Connection &connection, const NewAllocation &a, uint32_t *slot) {
  flatbuffers::FlatBufferBuilder builder;
  std::vector<uint8_t> uuid(a.device_uuid, a.device_uuid + sizeof(a.device_uuid));
  std::vector<uint8_t> handle(a.ipc_handle, a.ipc_handle + sizeof(a.ipc_handle));
  bool vmm = a.kind == shm::AllocationKind::kCudaVmm;
  auto body = proto::CreateRegisterCudaAllocationDirect(builder, a.topic, uint32_t(a.kind), a.size, &uuid,
                                                        vmm ? nullptr : &handle, a.base, uint32_t(a.chunks.size()));
  Reply reply;
  int rc = connection.call(builder, proto::Body::RegisterCudaAllocation, body.Union(), &reply);
  if (rc != WB_OK) return rc;
  *slot = uint32_t(reply.value);
  rc = catching("sending a CUDA allocation's chunks", [&] { return send_chunks(connection, *slot, a); });
  if (rc != WB_OK) {
    uint32_t importers = 0;
    char message[512];  // not a std::string: the failure may be running out of memory
    snprintf(message, sizeof(message), "%s", wb_last_error());
    revoke_allocation(connection, *slot, &importers);  // the broker drops the chunks it got
    return fail(rc, "%s", message);
  }
  return WB_OK;
}

}  // namespace

int alloc_owned(int ordinal, uint64_t size, Owned *out, int *fd) {
  const Driver *d = nullptr;
  int rc = driver(&d);
  if (rc == WB_OK) rc = primary_context(ordinal, &out->context);
  ContextGuard guard;
  if (rc == WB_OK) rc = guard.push(out->context);
  if (rc != WB_OK) return rc;
  CUmemAllocationProp prop{};
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  prop.location.id = ordinal;
  prop.requestedHandleTypes = CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR;
  size_t granularity = 0;
  rc = check(d->cuMemGetAllocationGranularity(&granularity, &prop, CU_MEM_ALLOC_GRANULARITY_RECOMMENDED),
             "cuMemGetAllocationGranularity");
  if (rc != WB_OK) return rc;
  out->size = (std::max<uint64_t>(size, 1) + granularity - 1) / granularity * granularity;
  if ((rc = check(d->cuMemCreate(&out->handle, out->size, &prop, 0), "cuMemCreate")) != WB_OK) return rc;
  CUmemAccessDesc access{};
  access.location = prop.location;
  access.flags = CU_MEM_ACCESS_FLAGS_PROT_READWRITE;
  rc = check(d->cuMemAddressReserve(&out->base, out->size, granularity, 0, 0), "cuMemAddressReserve");
  if (rc == WB_OK && (rc = check(d->cuMemMap(out->base, out->size, 0, out->handle, 0), "cuMemMap")) != WB_OK) {
    d->cuMemAddressFree(out->base, out->size);
  }
  if (rc != WB_OK) {
    d->cuMemRelease(out->handle);
    return rc;
  }
  rc = check(d->cuMemSetAccess(out->base, out->size, &access, 1), "cuMemSetAccess");
  if (rc == WB_OK) {  // zeroed before any stream writes it: not left on the legacy stream (driver.hpp)
    rc = run_and_wait(d, [&](CUstream s) {
      return check(d->cuMemsetD8Async(out->base, 0, out->size, s), "cuMemsetD8Async");
    });
  }
  if (rc == WB_OK) {
    rc = check(d->cuMemExportToShareableHandle(fd, out->handle, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0),
               "cuMemExportToShareableHandle");
  }
  if (rc != WB_OK) free_owned(*out);
  return rc;
}

void free_owned(const Owned &owned) {
  const Driver *d = nullptr;
  ContextGuard guard;
  if (owned.handle == 0 || driver(&d) != WB_OK || guard.push(owned.context) != WB_OK) return;
  d->cuMemUnmap(owned.base, owned.size);
  d->cuMemAddressFree(owned.base, owned.size);
  d->cuMemRelease(owned.handle);
}

Exports::~Exports() {
  for (const Export &e : exports_) free_owned(e.owned);
}

int export_vmm_chunk(const Driver *d, CUdeviceptr base, int *fd) {
  CUmemGenericAllocationHandle handle;
  int rc = check(d->cuMemRetainAllocationHandle(&handle, reinterpret_cast<void *>(base)),
                 "cuMemRetainAllocationHandle");
  if (rc != WB_OK) return rc;
  CUresult r = d->cuMemExportToShareableHandle(fd, handle, CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR, 0);
  d->cuMemRelease(handle);
  if (r == CUDA_SUCCESS) return WB_OK;
  check(r, "cuMemExportToShareableHandle");
  char why[512];  // not a std::string: the caller holds chunk fds that an exception would leak
  snprintf(why, sizeof(why), "%s", wb_last_error());
  return fail(WB_E_INVAL,
              "VMM memory at %#llx cannot be exported as a POSIX fd (created without "
              "CU_MEM_HANDLE_TYPE_POSIX_FILE_DESCRIPTOR in requestedHandleTypes?): %s",
              (unsigned long long)base, why);
}

int Exports::add(NewAllocation &a, const Owned &owned, uint32_t *slot) {
  ScopeExit close_fds([&a] { close_chunks(a); });
  // The record is made first: once the broker has the allocation, remembering it cannot fail.
  std::list<Export> made(1);
  Export &e = made.front();
  for (const Chunk &c : a.chunks) e.chunk_sizes.push_back(c.size);
  int rc = send_allocation(connection_, a, slot);
  if (rc != WB_OK) return rc;
  e.slot = *slot;
  e.topic = a.topic;
  e.base = a.base;
  e.size = a.size;
  e.owned = owned;
  std::lock_guard lock(mutex_);
  exports_.splice(exports_.end(), made);
  return WB_OK;
}

void Exports::export_again() {
  std::vector<Export> exports;
  {
    std::lock_guard lock(mutex_);
    exports.assign(exports_.begin(), exports_.end());
  }
  for (const Export &e : exports) {
    const shm::Allocation &a = seg_.allocation(e.slot);
    if (e.chunk_sizes.empty() || a.state.load(std::memory_order_acquire) != uint32_t(shm::AllocationState::kPending)) {
      continue;
    }
    uint32_t importers = 0;
    if (export_again(e) != WB_OK) revoke_allocation(connection_, e.slot, &importers);
  }
}

int Exports::export_again(const Export &e) {
  const Driver *d = nullptr;
  int ordinal = 0;
  CUcontext context = nullptr;
  ContextGuard guard;
  int rc = driver(&d);
  if (rc == WB_OK) rc = ordinal_of(seg_.allocation(e.slot).device_uuid, &ordinal);
  if (rc == WB_OK) rc = primary_context(ordinal, &context);
  if (rc == WB_OK) rc = guard.push(context);
  NewAllocation again;
  CUdeviceptr at = e.base;
  for (size_t i = 0; rc == WB_OK && i < e.chunk_sizes.size(); at += e.chunk_sizes[i++]) {
    int fd = -1;
    rc = export_vmm_chunk(d, at, &fd);
    if (rc == WB_OK) again.chunks.push_back(Chunk{fd, e.chunk_sizes[i]});
  }
  if (rc == WB_OK) rc = send_chunks(connection_, e.slot, again);
  close_chunks(again);
  return rc;
}

bool Exports::find(uint32_t topic_slot, CUdeviceptr begin, uint64_t bytes, uint32_t *slot) {
  const shm::Segment &seg = seg_;
  std::lock_guard lock(mutex_);
  for (const Export &e : exports_) {
    bool live = seg.allocation(e.slot).state.load(std::memory_order_acquire) == uint32_t(shm::AllocationState::kLive);
    if (live && e.topic == topic_slot && begin >= e.base && bytes <= e.size && begin - e.base <= e.size - bytes) {
      *slot = e.slot;
      return true;
    }
  }
  return false;
}

void Exports::forget(uint32_t slot) {
  std::lock_guard lock(mutex_);
  auto found = std::find_if(exports_.begin(), exports_.end(), [slot](const Export &e) { return e.slot == slot; });
  if (found == exports_.end()) return;
  free_owned(found->owned);
  exports_.erase(found);
}

int register_tensors(wb_topic *topic, const std::vector<TensorRequest> &requests,
                     const std::vector<Placement> &placements) {
  uint32_t replicas = topic->entry->replicas;
  for (size_t first = 0; first < placements.size(); first += kTensorsPerMessage) {
    flatbuffers::FlatBufferBuilder builder;
    std::vector<flatbuffers::Offset<proto::RegisteredTensor>> entries;
    for (size_t i = first; i < std::min(placements.size(), first + kTensorsPerMessage); ++i) {
      const Placement &p = placements[i];
      const TensorRequest &r = requests[p.spec];
      std::vector<int64_t> shape(r.shape, r.shape + r.ndim);
      std::vector<uint32_t> allocations(p.allocation, p.allocation + replicas);
      std::vector<uint64_t> offsets(p.offset, p.offset + replicas);
      auto shard = build_shard(builder, r);
      entries.push_back(
          proto::CreateRegisteredTensorDirect(builder, r.name, r.dtype, &shape, &allocations, &offsets, shard));
    }
    auto body = proto::CreateRegisterTensorsDirect(builder, topic->slot, &entries);
    Reply reply;
    int rc = topic->client->connection.call(builder, proto::Body::RegisterTensors, body.Union(), &reply);
    if (rc != WB_OK) return rc;
  }
  return WB_OK;
}

int revoke_allocation(Connection &connection, uint32_t slot, uint32_t *importers) {
  flatbuffers::FlatBufferBuilder builder;
  auto body = proto::CreateRevokeAllocation(builder, slot);
  Reply reply;
  int rc = connection.call(builder, proto::Body::RevokeAllocation, body.Union(), &reply);
  if (rc == WB_OK) *importers = uint32_t(reply.value);
  return rc;
}

}  // namespace wb::cuda
