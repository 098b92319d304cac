// Learning about new versions: latest, a blocking wait on the topic's futex, and a pollable notify fd.
#include <fcntl.h>
#include <unistd.h>

#include "client_internal.hpp"
#include "clock.hpp"
#include "error.hpp"
#include "scope_exit.hpp"

using namespace wb;

extern "C" WB_API int wb_topic_latest(wb_topic *topic, uint64_t *version) try {
  if (topic == nullptr || version == nullptr) return fail(WB_E_INVAL, "topic or version is NULL");
  // The version is in shared memory: while a successor broker may still take this client back, it is known.
  wb_client *client = topic->client;
  if (client->broker_gone.load() && check_broker_while_waiting(client) != WB_OK) return WB_E_BROKER_GONE;
  *version = topic->entry->latest.load(std::memory_order_acquire);
  return WB_OK;
} catch (...) {
  return wb::abi_error(__func__);
}

extern "C" WB_API int wb_topic_wait(wb_topic *topic, uint64_t after, int64_t timeout_ms, uint64_t *version) try {
  if (topic == nullptr || version == nullptr) return fail(WB_E_INVAL, "topic or version is NULL");
  shm::Topic &t = *topic->entry;
  Deadline deadline(timeout_ms);
  for (;;) {
    uint32_t seq = t.version_seq.load(std::memory_order_seq_cst);
    uint64_t latest = t.latest.load(std::memory_order_seq_cst);
    if (latest > after) {
      *version = latest;
      return WB_OK;
    }
    int rc = sleep_on(topic->client, &t.version_seq, &t.version_waiters, seq, deadline.remaining_ns());
    if (rc == WB_E_TIMEOUT) {
      return fail(WB_E_TIMEOUT, "topic '%s': no version after %llu within %lld ms", t.name,
                  (unsigned long long)after, (long long)timeout_ms);
    }
    if (rc != WB_OK) return rc;
  }
} catch (...) {
  return wb::abi_error(__func__);
}

extern "C" WB_API int wb_topic_notify_fd(wb_topic *topic, int *fd) try {
  if (topic == nullptr || fd == nullptr) return fail(WB_E_INVAL, "topic or fd is NULL");
  std::lock_guard lock(topic->handles_mutex);
  wb_client *client = topic->client;
  if (int rc = check_broker(client); rc != WB_OK) return rc;
  if (topic->notify_fd >= 0 && topic->notify_session == client->session.load()) {
    *fd = topic->notify_fd;
    return WB_OK;
  }
  if (topic->notify_fd >= 0) {  // subscribed with a broker that died; the client resumed with its successor
    topic->retired_notify_fds.push_back(topic->notify_fd);
    topic->notify_fd = -1;
  }
  flatbuffers::FlatBufferBuilder builder;
  auto body = proto::CreateSubscribe(builder, topic->index);
  Reply reply;
  int ends[2];
  if (pipe2(ends, O_CLOEXEC | O_NONBLOCK) != 0) return fail_errno("pipe2");
  ScopeExit close_read_end([&ends] { close(ends[0]); });
  int rc;
  {
    // The broker holds the write end once subscribed: its death turns into end of file here.
    ScopeExit close_write_end([&ends] { close(ends[1]); });
    rc = request(client, builder, proto::Body::Subscribe, body.Union(), &reply, &ends[1], 1);
  }
  if (rc != WB_OK) return rc;
  close_read_end.release();
  topic->notify_fd = ends[0];
  topic->notify_session = client->session.load();
  *fd = ends[0];
  return WB_OK;
} catch (...) {
  return wb::abi_error(__func__);
}
