// Ordering GPU work through a version, the C ABI over Events (events.hpp): a publish ordered after the
// publisher's stream, and a reader's stream or thread waiting for it.
#include "client.hpp"
#include "client_state.hpp"
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
  bool by_word = false;
  int rc = client_state(update->topic->client, &state);
  if (rc == WB_OK) rc = state->events.record(update, stream, &by_word);
  if (rc != WB_OK) return rc;
  update->record_flags |= shm::kRecordOnStream | (by_word ? shm::kRecordGpuWord : 0);
  update->stream = stream;
  return wb_update_publish(update, metadata, metadata_size, version);
} catch (...) {
  return wb::abi_error(__func__);
}

extern "C" WB_API int wb_snapshot_wait_stream(wb_snapshot *snapshot, void *stream) try {
  if (snapshot == nullptr) return fail(WB_E_INVAL, "snapshot is NULL");
  ClientState *state = nullptr;
  int rc = client_state(snapshot->topic->client, &state);
  return rc != WB_OK ? rc : state->events.order_stream(snapshot, stream);
} catch (...) {
  return wb::abi_error(__func__);
}

extern "C" WB_API int wb_snapshot_synchronize(wb_snapshot *snapshot, int64_t timeout_ms) try {
  if (snapshot == nullptr) return fail(WB_E_INVAL, "snapshot is NULL");
  ClientState *state = nullptr;
  int rc = client_state(snapshot->topic->client, &state);
  return rc != WB_OK ? rc : state->events.synchronize(snapshot, timeout_ms);
} catch (...) {
  return wb::abi_error(__func__);
}
