// What a device pointer points into: the allocation to export so that other processes can reach a tensor
// stored there, found with the driver (PyTorch's caching allocator hands out pieces of bigger blocks).
#pragma once

#include <cuda.h>

#include <cstdint>
#include <vector>

#include "exports.hpp"
#include "layout.hpp"

namespace wb::cuda {

struct Span {
  CUdeviceptr base;
  uint64_t size;
};

struct Region {
  shm::AllocationKind kind = shm::AllocationKind::kCudaIpc;
  int ordinal = 0;
  CUcontext context = nullptr;  // the GPU's primary context
  Span whole{};                 // legacy: the cuMemAlloc block (cuMemGetAddressRange)
  std::vector<Span> chunks;     // VMM: the physically separate chunks that [p, p + bytes) spans, in order
};

// Classifies [p, p + bytes), the storage of tensor `name`. WB_E_INVAL, naming the tensor, for memory that
// cannot be shared: not device memory, managed memory, memory-pool memory, or a range running past its block.
int locate(const char *name, CUdeviceptr p, uint64_t bytes, Region *out);

// Exports a located region for topic into *out: legacy, the IPC handle of its whole block; VMM, one fd for
// each of `chunks` (a run of back-to-back chunks, possibly gathered from several regions). On failure no fd
// is left open.
int export_region(const Region &region, const std::vector<Span> &chunks, uint32_t topic_slot,
                  NewAllocation *out);

}  // namespace wb::cuda
