// Copy-into's GPU copies (its checks and host copies are copy_into.cpp's), as one batch on one stream after the
// version's GPU work: the stream waits on the version's event, then the small same-GPU copies run as a few
// launches of the copy kernel (copy_batch.hpp) and the rest as one cuMemcpyAsync each (the driver picks
// device-to-device, peer or device-to-host copies from the addresses), spread over a few lanes.
#include <algorithm>

#include "client.hpp"
#include "client_state.hpp"
#include "copy.hpp"
#include "device.hpp"
#include "driver.hpp"
#include "error.hpp"
#include "hooks.hpp"
#include "snapshot.hpp"
#include "topic.hpp"

namespace wb::cuda {

int copy_on_stream(wb_snapshot *snapshot, const std::vector<Copy> &copies, void *stream) {
  ClientState *state = nullptr;
  int rc = client_state(snapshot->topic->client, &state);
  int ordinal = -1;
  for (const Copy &c : copies) {
    if (c.cuda && ordinal < 0) ordinal = c.ordinal;
  }
  CUcontext context = nullptr;
  ContextGuard guard;
  if (rc != WB_OK || (rc = stream_context(stream, ordinal, &context)) != WB_OK || (rc = guard.push(context)) != WB_OK ||
      (rc = wb_snapshot_wait_stream(snapshot, stream)) != WB_OK) {
    return rc;
  }
  // The copies the kernel will not take, known before its reachability checks: enough of them fork the lanes.
  const bool kernel = state->copy_kernel.usable(context);
  const size_t expected = size_t(std::count_if(copies.begin(), copies.end(), [&](const Copy &c) {
    return c.cuda && c.bytes > 0 && (!kernel || c.bytes >= kKernelMaxBytes);
  }));
  auto s = static_cast<CUstream>(stream);
  return state->copy_lanes.enqueue(context, s, expected, [&](std::vector<Copy> *per_copy) {
    return state->copy_kernel.run(context, copies, s, per_copy);
  });
}

}  // namespace wb::cuda
