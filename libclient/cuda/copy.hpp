// Copy-into runs a batch of copies on helper streams ("lanes") forked from the caller's stream and joined back
// into it: each device-to-device copy is a kernel with its own ramp-up and tail, and hundreds of them queued
// one behind the other on one stream leave the GPU idle in between; on a few lanes they overlap.
#pragma once

#include <cuda.h>

#include <cstdint>
#include <mutex>
#include <vector>

namespace wb::cuda {

struct Copy {
  const char *src = nullptr;
  char *dst = nullptr;
  uint64_t bytes = 0;
  bool cuda = false;  // a GPU is on either side
  int ordinal = -1;   // a GPU of the copy, for a NULL stream in a thread without a context
};

class CopyLanes {
 public:
  CopyLanes() = default;
  CopyLanes(const CopyLanes &) = delete;
  CopyLanes &operator=(const CopyLanes &) = delete;
  ~CopyLanes();

  // Enqueues the CUDA copies after the work already on stream (of context, which is current); work queued on
  // stream afterwards runs after them.
  int enqueue(CUcontext context, CUstream stream, const std::vector<Copy> &copies);

 private:
  struct Lanes {
    CUcontext context = nullptr;
    CUevent fork = nullptr;
    std::vector<CUstream> streams;
    std::vector<CUevent> joins;
  };
  int lanes_of(CUcontext context, Lanes **out);

  std::mutex mutex_;  // one batch at a time enqueues on the lanes
  std::vector<Lanes> lanes_;
};

}  // namespace wb::cuda
