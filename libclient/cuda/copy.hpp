// Copy-into runs the copies that the copy kernel does not take (copy_batch.hpp: large, peer and host copies) as
// one cuMemcpyAsync each, on helper streams ("lanes") forked from the caller's stream and joined back into it:
// each device-to-device copy is a kernel with its own ramp-up and tail, and hundreds of them queued one behind
// the other on one stream leave the GPU idle in between; on a few lanes they overlap.
#pragma once

#include <cuda.h>

#include <functional>
#include <mutex>
#include <vector>

#include "copy_plan.hpp"
#include "driver.hpp"

namespace wb::cuda {

// One cuMemcpyAsync of c on stream.
int memcpy_async(const Driver *d, const Copy &c, CUstream stream);

class CopyLanes {
 public:
  CopyLanes() = default;
  CopyLanes(const CopyLanes &) = delete;
  CopyLanes &operator=(const CopyLanes &) = delete;
  ~CopyLanes();

  // Enqueues copies after the work already on stream (of context, which is current), and calls on_stream to
  // enqueue more work on stream itself, which runs beside the lanes; work queued on stream afterwards runs
  // after all of it.
  int enqueue(CUcontext context, CUstream stream, const std::vector<Copy> &copies,
              const std::function<int()> &on_stream);

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
