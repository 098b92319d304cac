#include "locate.hpp"

#include <unistd.h>

#include <cstring>
#include <string>

#include "device.hpp"
#include "driver.hpp"
#include "error.hpp"
#include "weightbus/weightbus.h"

namespace wb::cuda {

namespace {

template <typename T>
CUresult attribute(const Driver *d, T *value, CUpointer_attribute which, CUdeviceptr p) {
  return d->cuPointerGetAttribute(value, which, p);
}

// Refuses what cannot be shared between processes, before anything is exported.
int check_shareable(const Driver *d, const char *name, CUdeviceptr p, int *ordinal) {
  unsigned int managed = 0;
  if (attribute(d, &managed, CU_POINTER_ATTRIBUTE_IS_MANAGED, p) != CUDA_SUCCESS) {
    return fail(WB_E_INVAL, "tensor '%s': %#llx is not memory CUDA knows (a host pointer?)", name,
                (unsigned long long)p);
  }
  if (managed) {
    return fail(WB_E_INVAL,
                "tensor '%s': %#llx is managed memory (cuMemAllocManaged), which cannot be shared "
                "between processes: allocate it with cudaMalloc or wb_tensor_alloc_cuda",
                name, (unsigned long long)p);
  }
  CUmemoryPool pool = nullptr;
  attribute(d, &pool, CU_POINTER_ATTRIBUTE_MEMPOOL_HANDLE, p);
  if (pool != nullptr) {
    return fail(WB_E_INVAL,
                "tensor '%s': %#llx comes from a memory pool (cuMemAllocAsync / cudaMallocAsync), "
                "which weightbus does not export: use cudaMalloc (PyTorch's default allocator) or "
                "wb_tensor_alloc_cuda",
                name, (unsigned long long)p);
  }
  unsigned int type = 0;
  attribute(d, &type, CU_POINTER_ATTRIBUTE_MEMORY_TYPE, p);
  if (type != CU_MEMORYTYPE_DEVICE) {
    return fail(WB_E_INVAL, "tensor '%s': %#llx is host memory, not GPU memory: use wb_tensor_alloc for host tensors",
                name, (unsigned long long)p);
  }
  return check(attribute(d, ordinal, CU_POINTER_ATTRIBUTE_DEVICE_ORDINAL, p), "cuPointerGetAttribute(DEVICE_ORDINAL)");
}

void close_chunks(NewAllocation *a) {
  for (const Chunk &c : a->chunks) close(c.fd);
  a->chunks.clear();
}

bool is_vmm(const Driver *d, CUdeviceptr p) {
  CUmemGenericAllocationHandle handle;
  if (d->cuMemRetainAllocationHandle(&handle, reinterpret_cast<void *>(p)) != CUDA_SUCCESS) return false;
  d->cuMemRelease(handle);
  return true;
}

// VMM: each cuMemMap'ed chunk is its own range (cuMemGetAddressRange reports the chunk, not the reservation),
// and neighbouring chunks may belong to different physical allocations: walk them one by one.
int walk_chunks(const Driver *d, const char *name, CUdeviceptr p, uint64_t bytes, Region *out) {
  CUdeviceptr at = p;
  do {
    Span chunk{};
    size_t size = 0;
    int rc = check(d->cuMemGetAddressRange(&chunk.base, &size, at), "cuMemGetAddressRange");
    if (rc != WB_OK) return rc;
    chunk.size = size;
    if (size == 0 || !is_vmm(d, chunk.base)) {
      return fail(WB_E_INVAL,
                  "tensor '%s': bytes at %#llx are not mapped VMM memory, but the tensor starts in a VMM "
                  "mapping at %#llx",
                  name, (unsigned long long)at, (unsigned long long)p);
    }
    out->chunks.push_back(chunk);
    at = chunk.base + chunk.size;
  } while (at < p + bytes);
  return WB_OK;
}

int locate_legacy(const Driver *d, const char *name, CUdeviceptr p, uint64_t bytes, Region *out) {
  size_t size = 0;
  int rc = check(d->cuMemGetAddressRange(&out->whole.base, &size, p), "cuMemGetAddressRange");
  if (rc != WB_OK) return rc;
  out->whole.size = size;
  if (p + bytes > out->whole.base + size) {
    return fail(WB_E_INVAL, "tensor '%s': %llu bytes at %#llx run past the end of its CUDA allocation [%#llx, +%llu)",
                name, (unsigned long long)bytes, (unsigned long long)p, (unsigned long long)out->whole.base,
                (unsigned long long)size);
  }
  unsigned int capable = 0;
  attribute(d, &capable, CU_POINTER_ATTRIBUTE_IS_LEGACY_CUDA_IPC_CAPABLE, p);
  if (!capable) {
    return fail(WB_E_INVAL, "tensor '%s': the CUDA allocation at %#llx cannot be shared with cuIpcGetMemHandle", name,
                (unsigned long long)out->whole.base);
  }
  return WB_OK;
}

}  // namespace

int locate(const char *name, CUdeviceptr p, uint64_t bytes, Region *out) {
  const Driver *d = nullptr;
  int rc = driver(&d);
  if (rc != WB_OK || (rc = check_shareable(d, name, p, &out->ordinal)) != WB_OK) return rc;
  ContextGuard guard;
  if ((rc = primary_context(out->ordinal, &out->context)) != WB_OK || (rc = guard.push(out->context)) != WB_OK) {
    return rc;
  }
  if (is_vmm(d, p)) {
    out->kind = shm::AllocationKind::kCudaVmm;
    return walk_chunks(d, name, p, bytes, out);
  }
  out->kind = shm::AllocationKind::kCudaIpc;
  return locate_legacy(d, name, p, bytes, out);
}

int export_region(const Region &region, const std::vector<Span> &chunks, uint32_t topic_slot, NewAllocation *out) {
  const Driver *d = nullptr;
  ContextGuard guard;
  int rc = driver(&d);
  if (rc == WB_OK) rc = uuid_of(region.ordinal, out->device_uuid);
  if (rc == WB_OK) rc = guard.push(region.context);
  if (rc != WB_OK) return rc;
  out->topic = topic_slot;
  out->kind = region.kind;
  if (region.kind == shm::AllocationKind::kCudaIpc) {
    out->base = region.whole.base;
    out->size = region.whole.size;
    CUipcMemHandle handle;
    rc = check(d->cuIpcGetMemHandle(&handle, region.whole.base), "cuIpcGetMemHandle");
    if (rc == WB_OK) memcpy(out->ipc_handle, handle.reserved, sizeof(out->ipc_handle));
    return rc;
  }
  out->base = chunks.front().base;
  out->size = 0;
  out->chunks.reserve(chunks.size());  // an exported chunk's fd is recorded without allocating
  for (const Span &chunk : chunks) {
    int fd = -1;
    if ((rc = export_vmm_chunk(d, chunk.base, &fd)) != WB_OK) {
      close_chunks(out);
      return rc;
    }
    out->chunks.push_back(Chunk{fd, chunk.size});
    out->size += chunk.size;
  }
  return WB_OK;
}

}  // namespace wb::cuda
