// The broker's side of CUDA VMM allocations: the chunk fds their exporters handed over, kept open so that the
// memory outlives its exporter and handed out to importers. The broker never calls CUDA; it only holds fds.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <unordered_map>
#include <utility>
#include <vector>

namespace wb::broker {

struct CudaChunk {
  CudaChunk(int fd, uint64_t offset, uint64_t size) : fd(fd), offset(offset), size(size) {}
  CudaChunk(CudaChunk &&other) noexcept : fd(std::exchange(other.fd, -1)), offset(other.offset), size(other.size) {}
  CudaChunk(const CudaChunk &) = delete;
  CudaChunk &operator=(const CudaChunk &) = delete;
  CudaChunk &operator=(CudaChunk &&) = delete;
  ~CudaChunk() {
    if (fd >= 0) close(fd);
  }
  int fd;
  uint64_t offset;  // from the allocation's start
  uint64_t size;
};

// allocation slot -> its chunks so far, in address order
using CudaChunks = std::unordered_map<uint32_t, std::vector<CudaChunk>>;

}  // namespace wb::broker
