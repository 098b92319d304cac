// Learning about new versions: latest, and a blocking wait on the topic's futex (the pollable notify fd is in
// notify.cpp).
#include "client.hpp"
#include "clock.hpp"
#include "cuda/hooks.hpp"
#include "error.hpp"
#include "sleep.hpp"
#include "topic.hpp"
#include "topic_state.hpp"

using namespace wb;

extern "C" WB_API int wb_topic_latest(wb_topic *topic, uint64_t *version) try {
  if (topic == nullptr || version == nullptr) return fail(WB_E_INVAL, "topic or version is NULL");
  // The version is in shared memory: while a successor broker may still take this client back, it is known.
  Connection &connection = topic->client->connection;
  if (connection.marked_gone() && connection.check_broker_while_waiting() != WB_OK) return WB_E_BROKER_GONE;
  if (int rc = check_topic_live(topic); rc != WB_OK) return rc;
  *version = topic->entry->latest.load(std::memory_order_acquire);
  return WB_OK;
} catch (...) {
  return wb::abi_error(__func__);
}

extern "C" WB_API int wb_topic_wait(wb_topic *topic, uint64_t after, int64_t timeout_ms, uint64_t *version) try {
  if (topic == nullptr || version == nullptr) return fail(WB_E_INVAL, "topic or version is NULL");
  shm::Topic &entry = *topic->entry;
  Deadline deadline(timeout_ms);
  for (;;) {
    uint32_t seq = entry.version_seq.load(std::memory_order_seq_cst);
    if (int rc = check_topic_live(topic); rc != WB_OK) return rc;
    uint64_t latest = entry.latest.load(std::memory_order_seq_cst);
    if (latest > after) {
      *version = latest;
      return WB_OK;
    }
    cuda::sweep(topic->client);  // a reader blocked here still drops revoked CUDA imports, once per slice
    int rc = sleep_on(topic->client->connection, &entry.version_seq, &entry.version_waiters, seq,
                      deadline.remaining_ns());
    if (rc == WB_E_TIMEOUT) {
      return fail(WB_E_TIMEOUT, "topic '%s': no version after %llu within %lld ms%s", entry.name,
                  (unsigned long long)after, (long long)timeout_ms,
                  topic_state::waiting_for(topic->client->seg, entry).c_str());
    }
    if (rc != WB_OK) return rc;
  }
} catch (...) {
  return wb::abi_error(__func__);
}
