// Ordering GPU work through a version, the C ABI over Events (events.hpp): a publish recorded on the
// publisher's stream, and a reader's stream or thread waiting for it.
#include <time.h>

#include <algorithm>
#include <memory>

#include "client.hpp"
#include "client_state.hpp"
#include "clock.hpp"
#include "device.hpp"
#include "driver.hpp"
#include "error.hpp"
#include "events.hpp"
#include "snapshot.hpp"
#include "topic.hpp"
#include "update.hpp"

using namespace wb;
using namespace wb::cuda;

extern "C" WB_API int wb_update_publish_on_stream(wb_update *update, void *stream, const void *metadata,
                                                  uint32_t metadata_size, uint64_t *version) try {
  if (update == nullptr) return fail(WB_E_INVAL, "update is NULL");
  if (metadata == nullptr && metadata_size > 0) {
    return fail(WB_E_INVAL, "metadata is NULL but its size is %u", metadata_size);
  }
  if (metadata_size > WB_METADATA_MAX) {
    return fail(WB_E_SIZE, "metadata is %u bytes, over the limit of %d", metadata_size, WB_METADATA_MAX);
  }
  if (update->topic->rank != shm::kNone) {
    // A rank's part counts once its bytes are there: readers order their copies after the commit alone.
    int rc = check_rank_metadata(update->topic, metadata_size);
    if (rc == WB_OK) rc = synchronize_for_rank(update, stream);
    if (rc != WB_OK) return rc;
    return wb_update_publish(update, metadata, metadata_size, version);
  }
  ClientState *state = nullptr;
  int rc = client_state(update->topic->client, &state);
  if (rc == WB_OK) rc = state->events.record(update, stream);
  if (rc != WB_OK) return rc;
  update->record_flags |= shm::kRecordGpuEvent;
  return wb_update_publish(update, metadata, metadata_size, version);
} catch (...) {
  return wb::abi_error(__func__);
}

extern "C" WB_API int wb_snapshot_wait_stream(wb_snapshot *snapshot, void *stream) try {
  if (snapshot == nullptr) return fail(WB_E_INVAL, "snapshot is NULL");
  ClientState *state = nullptr;
  CUevent event = nullptr;
  CUcontext context = nullptr;
  std::shared_ptr<LocalEvent> local;
  const Driver *d = nullptr;
  int rc = client_state(snapshot->topic->client, &state);
  if (rc == WB_OK) rc = state->events.event_for(snapshot, stream, &event, &context, &local);
  if (rc != WB_OK || event == nullptr) return rc;
  ContextGuard guard;
  if ((rc = driver(&d)) != WB_OK || (rc = guard.push(context)) != WB_OK) return rc;
  return check(d->cuStreamWaitEvent(static_cast<CUstream>(stream), event, 0), "cuStreamWaitEvent");
} catch (...) {
  return wb::abi_error(__func__);
}

extern "C" WB_API int wb_snapshot_synchronize(wb_snapshot *snapshot, int64_t timeout_ms) try {
  if (snapshot == nullptr) return fail(WB_E_INVAL, "snapshot is NULL");
  ClientState *state = nullptr;
  CUevent event = nullptr;
  CUcontext context = nullptr;  // the host waits from any context: the thread's, else the event GPU's
  std::shared_ptr<LocalEvent> local;
  const Driver *d = nullptr;
  int rc = client_state(snapshot->topic->client, &state);
  if (rc == WB_OK) rc = state->events.event_for(snapshot, nullptr, &event, &context, &local);
  if (rc != WB_OK || event == nullptr || (rc = driver(&d)) != WB_OK) return rc;
  if (timeout_ms < 0) return check(d->cuEventSynchronize(event), "cuEventSynchronize");
  // cuEventSynchronize takes no timeout: poll, sleeping longer as the wait goes on (1 us .. 100 us).
  Deadline deadline(timeout_ms);
  for (int64_t pause_ns = 1000;; pause_ns = std::min<int64_t>(pause_ns * 2, 100000)) {
    CUresult r = d->cuEventQuery(event);
    if (r != CUDA_ERROR_NOT_READY) return check(r, "cuEventQuery");
    if (deadline.expired()) {
      return fail(WB_E_TIMEOUT, "version %llu's GPU work did not finish within %lld ms",
                  (unsigned long long)snapshot->version, (long long)timeout_ms);
    }
    timespec pause{0, long(pause_ns)};
    nanosleep(&pause, nullptr);
  }
} catch (...) {
  return wb::abi_error(__func__);
}
