// Copy-into's GPU copies (its checks and host copies are copy_into.cpp's), as one batch on one stream after the
// version's GPU work: the stream waits on the version's event, then the small same-GPU copies run as a few
// launches of the copy kernel (copy_batch.hpp) and the rest as one cuMemcpyAsync each (the driver picks
// device-to-device, peer or device-to-host copies from the addresses), spread over a few lanes.
#include "copy.hpp"

#include <algorithm>

#include "client.hpp"
#include "snapshot.hpp"
#include "topic.hpp"
#include "client_state.hpp"
#include "device.hpp"
#include "driver.hpp"
#include "error.hpp"

namespace wb::cuda {

namespace {

// Lanes per context, and the smallest batch worth forking for (a fork and a join cost a few microseconds).
constexpr size_t kLanes = 4;
constexpr size_t kMinCopiesToFork = 2 * kLanes;

}  // namespace

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

int memcpy_async(const Driver *d, const Copy &c, CUstream stream) {
  return check(
      d->cuMemcpyAsync(reinterpret_cast<CUdeviceptr>(c.dst), reinterpret_cast<CUdeviceptr>(c.src), c.bytes, stream),
      "cuMemcpyAsync");
}

CopyLanes::~CopyLanes() {
  const Driver *d = nullptr;
  if (driver(&d) != WB_OK) return;
  for (Lanes &l : lanes_) {
    ContextGuard guard;
    if (guard.push(l.context) != WB_OK) continue;
    for (CUstream s : l.streams) d->cuStreamDestroy(s);
    for (CUevent e : l.joins) d->cuEventDestroy(e);
    d->cuEventDestroy(l.fork);
  }
}

int CopyLanes::lanes_of(CUcontext context, Lanes **out) {
  for (Lanes &l : lanes_) {
    if (l.context == context) {
      *out = &l;
      return WB_OK;
    }
  }
  const Driver *d = nullptr;
  int rc = driver(&d);
  // Room first: the streams and events created below are recorded without allocating.
  lanes_.reserve(lanes_.size() + 1);
  Lanes l;
  l.context = context;
  l.streams.reserve(kLanes);
  l.joins.reserve(kLanes);
  if (rc == WB_OK) rc = check(d->cuEventCreate(&l.fork, CU_EVENT_DISABLE_TIMING), "cuEventCreate");
  for (size_t i = 0; rc == WB_OK && i < kLanes; ++i) {
    CUstream s = nullptr;
    CUevent e = nullptr;
    rc = check(d->cuStreamCreate(&s, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
    if (rc == WB_OK) l.streams.push_back(s);
    if (rc == WB_OK) rc = check(d->cuEventCreate(&e, CU_EVENT_DISABLE_TIMING), "cuEventCreate");
    if (rc == WB_OK) l.joins.push_back(e);
  }
  if (rc != WB_OK) {
    for (CUstream s : l.streams) d->cuStreamDestroy(s);
    for (CUevent e : l.joins) d->cuEventDestroy(e);
    if (l.fork != nullptr) d->cuEventDestroy(l.fork);
    return rc;
  }
  lanes_.push_back(std::move(l));
  *out = &lanes_.back();
  return WB_OK;
}

int CopyLanes::enqueue(CUcontext context, CUstream stream, size_t expected_copies,
                       const std::function<int(std::vector<Copy> *)> &on_stream) {
  const Driver *d = nullptr;
  int rc = driver(&d);
  if (rc != WB_OK) return rc;
  std::vector<Copy> copies;
  if (expected_copies < kMinCopiesToFork) {
    if ((rc = on_stream(&copies)) != WB_OK) return rc;
    for (const Copy &c : copies) {
      if ((rc = memcpy_async(d, c, stream)) != WB_OK) return rc;
    }
    return WB_OK;
  }
  std::lock_guard lock(mutex_);
  Lanes *l = nullptr;
  if ((rc = lanes_of(context, &l)) != WB_OK) return rc;
  if ((rc = check(d->cuEventRecord(l->fork, stream), "cuEventRecord")) != WB_OK) return rc;
  for (CUstream s : l->streams) {
    if ((rc = check(d->cuStreamWaitEvent(s, l->fork, 0), "cuStreamWaitEvent")) != WB_OK) return rc;
  }
  rc = on_stream(&copies);
  // Each copy goes to the lane with the fewest bytes so far.
  std::vector<uint64_t> load(l->streams.size(), 0);
  for (size_t i = 0; rc == WB_OK && i < copies.size(); ++i) {
    size_t lane = size_t(std::min_element(load.begin(), load.end()) - load.begin());
    load[lane] += copies[i].bytes;
    rc = memcpy_async(d, copies[i], l->streams[lane]);
  }
  // Joined even after a failure, so that the caller's stream never runs ahead of the copies enqueued.
  for (size_t i = 0; i < l->streams.size(); ++i) {
    int joined = check(d->cuEventRecord(l->joins[i], l->streams[i]), "cuEventRecord");
    if (joined == WB_OK) joined = check(d->cuStreamWaitEvent(stream, l->joins[i], 0), "cuStreamWaitEvent");
    if (rc == WB_OK) rc = joined;
  }
  return rc;
}

}  // namespace wb::cuda
