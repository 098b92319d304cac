// Resuming after a broker restart. A successor weightbusd adopts the dead one's segment (broker/adopt.cpp) and
// keeps this client's slot, with its leases and publisher roles, as an orphan; the library connects to it and
// takes the slot back, so that every handle stays valid and blocked waits go on. What lived only in the dead
// broker is rebuilt: the CUDA imports it counted are reported, the VMM memory this client exported is sent
// again, and notify fds follow on their own (notify.cpp). Blocking calls that need a broker wait for the
// successor here (await_broker).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "client_internal.hpp"
#include "clock.hpp"
#include "cuda/hooks.hpp"
#include "error.hpp"
#include "layout.hpp"
#include "outage_watch.hpp"
#include "process_id.hpp"
#include "scope_exit.hpp"

namespace wb {

namespace {

int send_resume(wb_client *client, int sock, const std::vector<uint32_t> &imported) {
  std::vector<uint32_t> fields = shm::fingerprint_words();
  flatbuffers::FlatBufferBuilder builder;
  auto body = proto::CreateAttachDirect(builder, shm::kLayoutVersion, &fields, process_id(),
                                        client->seg.client(client->id).name, true, client->id, client->generation,
                                        &imported);
  Reply reply;
  return transact(client, sock, builder, proto::Body::Attach, body.Union(), nullptr, 0, &reply);
}

// Connects to the successor and takes our slot back; WB_OK once client->sock is the new connection, *done
// saying whether this call made it (rather than another thread meanwhile).
int reconnect(wb_client *client, const std::vector<uint32_t> &imported, bool *done) {
  std::lock_guard lock(client->request_mutex);
  *done = false;
  if (!client->broker_gone.load()) return WB_OK;
  if (client->resume_refused.load()) {
    return fail(WB_E_BROKER_GONE, "the broker is gone and its successor at %s did not take this client back: "
                "detach and attach again", client->socket_path.c_str());
  }
  int sock = -1;
  int rc = connect_socket(client->socket_path.c_str(), &sock);
  // What listens there, or the way to it, is not ours (WB_E_PERM): not a successor. One may still come.
  if (rc == WB_E_PERM) return fail(WB_E_BROKER_GONE, "the broker is gone, and no successor yet: %s", wb_last_error());
  if (rc != WB_OK) {
    return fail(WB_E_BROKER_GONE, "the broker is gone and no successor listens at %s yet",
                client->socket_path.c_str());
  }
  ScopeExit close_sock([sock] { close(sock); });  // also when resuming runs out of memory
  rc = send_resume(client, sock, imported);
  if (rc != WB_OK) {
    if (rc != WB_E_BROKER_GONE && rc != WB_E_TIMEOUT && rc != WB_E_NOMEM) client->resume_refused.store(true);
    return fail(WB_E_BROKER_GONE, "the broker is gone; its successor at %s refused to resume this client: %s",
                client->socket_path.c_str(), wb_last_error());
  }
  // The new connection takes the old one's fd number: threads polling client->sock see it, with no race.
  rc = dup3(sock, client->sock, O_CLOEXEC) < 0 ? fail_errno("dup3 of the new control socket") : WB_OK;
  if (rc != WB_OK) return fail(WB_E_BROKER_GONE, "the broker is gone; resuming failed: %s", wb_last_error());
  client->session.fetch_add(1);
  client->broker_gone.store(false);
  *done = true;
  return WB_OK;
}

}  // namespace

int resume(wb_client *client) {
  if (!client->broker_gone.load()) return WB_OK;
  bool done = false;
  int rc = reconnect(client, cuda::imported_allocations(client), &done);
  if (done) cuda::export_again(client);
  return rc;
}

namespace {

// The longest sleep between two attempts to resume in await_broker. With an outage watch a successor ends the
// sleep at once, and this bounds how late the end of the wait for one is noticed; without a watch (no inotify
// instance to be had) it bounds how late a successor is noticed.
constexpr int64_t kRetrySliceNs = 50'000'000;

// A broker that exits cleanly removes the segment: nothing is left for a successor to adopt.
bool segment_removed(const wb_client *client) {
  struct stat st;
  return fstat(client->segment_fd, &st) != 0 || st.st_nlink == 0;
}

}  // namespace

int64_t successor_deadline_ns(const wb_client *client) {
  if (client->timeout_ms < 0) return -1;
  return client->broker_gone_since_ns.load() + client->timeout_ms * 1000000;
}

bool successor_may_come(wb_client *client) {
  if (client->resume_refused.load() || segment_removed(client)) return false;
  int64_t deadline = successor_deadline_ns(client);
  return deadline < 0 || monotonic_ns() < deadline;
}

int no_successor(wb_client *client) {
  if (client->resume_refused.load()) return WB_E_BROKER_GONE;
  if (segment_removed(client)) {
    return fail(WB_E_BROKER_GONE, "the broker at %s exited and removed its segment: no successor will take this "
                "client back; attach again", client->socket_path.c_str());
  }
  return fail(WB_E_BROKER_GONE, "the broker at %s died and no successor took this client back within its "
              "timeout_ms (%lld ms): attach again", client->socket_path.c_str(), (long long)client->timeout_ms);
}

int check_broker_while_waiting(wb_client *client) {
  if (!broker_gone(client) || resume(client) == WB_OK || successor_may_come(client)) return WB_OK;
  return no_successor(client);
}

int await_broker(wb_client *client, const Deadline &deadline) {
  OutageWatch watch;
  bool watching = false;
  while (broker_gone(client) && resume(client) != WB_OK) {
    if (!successor_may_come(client)) return no_successor(client);
    int64_t remaining = deadline.remaining_ns();
    if (remaining == 0) {
      return fail(WB_E_TIMEOUT, "the broker at %s is gone and no successor took this client back within the "
                  "call's timeout", client->socket_path.c_str());
    }
    // The watch starts after a first attempt (a successor is often there already), and another attempt follows
    // at once: a successor may have appeared before the watch began.
    if (!watching) {
      watching = true;
      watch.start(client->socket_path, client->segment_fd);
      continue;
    }
    watch.sleep(remaining < 0 ? kRetrySliceNs : std::min(remaining, kRetrySliceNs));
  }
  return WB_OK;
}

}  // namespace wb
