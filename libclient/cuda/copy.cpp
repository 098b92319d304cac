// The copy lanes (copy.hpp): helper streams forked from the caller's stream for the copies the copy kernel does
// not take, one cuMemcpyAsync each, joined back into it.
#include "copy.hpp"

#include <algorithm>

#include "device.hpp"
#include "driver.hpp"
#include "error.hpp"
#include "weightbus/weightbus.h"

namespace wb::cuda {

namespace {

// Lanes per context, and the smallest batch worth forking for (a fork and a join cost a few microseconds).
constexpr size_t kLanes = 4;
constexpr size_t kMinCopiesToFork = 2 * kLanes;

}  // namespace

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
