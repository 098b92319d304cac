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

  // After the work already on stream (of context, which is current): calls on_stream, which enqueues work on
  // stream itself and leaves copies in its argument, then enqueues those copies, on the lanes (beside
  // on_stream's work) when about expected_copies or more are expected. Work queued on stream afterwards runs
  // after all of it.
  int enqueue(CUcontext context, CUstream stream, size_t expected_copies,
              const std::function<int(std::vector<Copy> *)> &on_stream);

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
