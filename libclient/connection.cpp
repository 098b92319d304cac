// The connection to the broker (connection.hpp): the socket and its round trips, noticing the broker's death,
// and resuming after a broker restart. A successor weightbusd adopts the dead one's segment (broker/adopt.cpp)
// and keeps this client's slot, with its leases and publisher roles, as an orphan; the connection connects to it
// and takes the slot back, so that every handle stays valid and blocked waits go on. What lived only in the dead
// broker is rebuilt through the resume hooks (the CUDA imports it counted, the VMM memory this client exported),
// and notify fds follow on their own (notify.cpp). Blocking calls that need a broker wait for the successor here
// (await_broker).
#include "connection.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "error.hpp"
#include "layout.hpp"
#include "outage_watch.hpp"
#include "private_path.hpp"
#include "process_id.hpp"
#include "scope_exit.hpp"
#include "socket_path.hpp"

namespace wb {

namespace {

// Only a broker of our own uid is talked to: the socket's directory must be private to us (a missing one is left
// to connect() to report) and the listening process must run as us, checked before anything is sent. A broker
// of root is refused too (a root client accepts only root): a broker of another uid must not see our requests,
// nor hand us a segment and metadata of its choosing.
int connect_socket(const char *path, int *out) {
  unsigned uid = geteuid();
  int rc = private_path::check_socket_directory(path, uid);
  if (rc != WB_OK && rc != WB_E_NOT_FOUND) return rc;
  sockaddr_un addr;
  if ((rc = socket_address(path, &addr)) != WB_OK) return rc;
  int sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (sock < 0) return fail_errno("socket");
  if (connect(sock, reinterpret_cast<sockaddr *>(&addr), sizeof(addr)) != 0) {
    int err = errno;
    close(sock);
    if (err == ENOENT || err == ECONNREFUSED) {
      return fail(WB_E_CONNECT, "no broker listens at %s (start one with `weightbusd`)", path);
    }
    if (err == EACCES) return fail(WB_E_PERM, "no permission to connect to %s", path);
    errno = err;
    return fail_errno("connect");
  }
  if ((rc = private_path::check_peer(path, sock, uid)) != WB_OK) {
    close(sock);
    return rc;
  }
  *out = sock;
  return WB_OK;
}

const proto::Reply *parse_reply(const wire::Received &got) {
  flatbuffers::Verifier verifier(got.data.data(), got.data.size());
  return verifier.VerifyBuffer<proto::Message>() ? proto::GetMessage(got.data.data())->body_as_Reply() : nullptr;
}

// A broker that refuses a connection (out of descriptors) answers request id 0 and closes it, maybe before it
// read the request: the send then finds the socket closed, or the receive its reset, while the refusal is still
// queued. Returns the refusal's error, else WB_E_BROKER_GONE as the send or receive said.
int queued_refusal(int sock, wire::Received *got) {
  char why[512];
  snprintf(why, sizeof(why), "%s", wb_last_error());
  if (wire::receive(sock, 0, got) == WB_OK) {
    wire::close_all(got->fds);
    const proto::Reply *r = parse_reply(*got);
    if (r != nullptr && proto::GetMessage(got->data.data())->id() == 0 && r->code() != WB_OK) {
      return fail(r->code(), "%s", r->message() ? r->message()->c_str() : "refused");
    }
  }
  return fail(WB_E_BROKER_GONE, "%s", why);
}

// The longest sleep between two attempts to resume in await_broker. With an outage watch a successor ends the
// sleep at once, and this bounds how late the end of the wait for one is noticed; without a watch (no inotify
// instance to be had) it bounds how late a successor is noticed.
constexpr int64_t kRetrySliceNs = 50'000'000;

}  // namespace

Connection::~Connection() {
  if (sock_ >= 0) close(sock_);
}

int Connection::connect(const char *path, int64_t timeout_ms) {
  timeout_ms_ = timeout_ms;
  socket_path_ = path;
  return connect_socket(path, &sock_);
}

void Connection::set_session(uint32_t client_slot, uint32_t generation, const char *name, int segment_fd,
                             const ResumeHooks &hooks) {
  client_slot_ = client_slot;
  generation_ = generation;
  name_ = name;
  segment_fd_ = segment_fd;
  hooks_ = hooks;
}

// The caller holds request_mutex_.
int Connection::send_recv_on(int sock, flatbuffers::FlatBufferBuilder &builder, proto::Body type,
                             flatbuffers::Offset<void> body, const int *fds, int nfds, Reply *reply) {
  uint32_t id = ++next_request_id_;
  builder.Finish(proto::CreateMessage(builder, id, type, body));
  int rc = wire::send(sock, builder.GetBufferPointer(), builder.GetSize(), fds, nfds);
  if (rc == WB_OK && reply != nullptr) rc = wire::receive(sock, timeout_ms_, &reply->message);
  if (rc == WB_E_BROKER_GONE && reply != nullptr) return queued_refusal(sock, &reply->message);
  if (rc != WB_OK || reply == nullptr) return rc;
  wire::Received &got = reply->message;  // made with the reply: nothing below allocates
  const proto::Reply *r = parse_reply(got);
  const proto::Message *msg = proto::GetMessage(got.data.data());
  // A reply to id 0 is the broker refusing what it could not take as a request (a message it could not read,
  // or this connection, when it is out of descriptors): its error is this call's.
  bool refused = r != nullptr && msg->id() == 0 && r->code() != WB_OK;
  if (r == nullptr || (msg->id() != id && !refused)) {
    wire::close_all(got.fds);
    return fail(WB_E_PROTOCOL, "the broker sent a malformed or unexpected reply");
  }
  reply->code = r->code();
  reply->value = r->value();
  reply->size = r->size();
  reply->fds.swap(got.fds);
  return r->code() == WB_OK ? WB_OK : fail(r->code(), "%s", r->message() ? r->message()->c_str() : "refused");
}

int Connection::send_recv(flatbuffers::FlatBufferBuilder &builder, proto::Body type, flatbuffers::Offset<void> body,
                          Reply *reply) {
  std::lock_guard lock(request_mutex_);
  return send_recv_on(sock_, builder, type, body, nullptr, 0, reply);
}

int Connection::resume_and_send_recv(flatbuffers::FlatBufferBuilder &builder, proto::Body type,
                                     flatbuffers::Offset<void> body, const int *fds, int nfds, Reply *reply) {
  int rc = check_broker();
  if (rc != WB_OK) return rc;
  std::lock_guard lock(request_mutex_);
  rc = send_recv_on(sock_, builder, type, body, fds, nfds, reply);
  if (rc == WB_E_BROKER_GONE) mark_broker_gone();
  return rc;
}

int Connection::call(flatbuffers::FlatBufferBuilder &builder, proto::Body type, flatbuffers::Offset<void> body,
                     Reply *reply, const int *fds, int nfds) {
  int rc = resume_and_send_recv(builder, type, body, fds, nfds, reply);
  if (rc != WB_OK) {
    for (int fd : reply->fds) close(fd);
    reply->fds.clear();
  }
  return rc;
}

int Connection::post(flatbuffers::FlatBufferBuilder &builder, proto::Body type, flatbuffers::Offset<void> body) {
  return resume_and_send_recv(builder, type, body, nullptr, 0, nullptr);
}

void Connection::mark_broker_gone() {
  if (!broker_gone_.exchange(true)) broker_gone_since_ns_.store(monotonic_ns());
}

bool Connection::broker_gone() {
  if (broker_gone_.load()) return true;
  pollfd pfd{sock_, POLLRDHUP, 0};
  if (poll(&pfd, 1, 0) > 0 && (pfd.revents & (POLLRDHUP | POLLHUP | POLLERR))) mark_broker_gone();
  return broker_gone_.load();
}

void Connection::await_reclaim() {
  if (sock_ < 0 || broker_gone_.load()) return;
  shutdown(sock_, SHUT_WR);
  Deadline deadline(timeout_ms_);
  char byte;
  for (;;) {
    pollfd pfd{sock_, POLLIN, 0};
    int ready = poll(&pfd, 1, int(deadline.remaining_ms()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0 || recv(sock_, &byte, 1, MSG_DONTWAIT) <= 0) return;
  }
}

int Connection::send_resume(int sock, const std::vector<uint32_t> &imported) {
  std::vector<uint32_t> fields = shm::fingerprint_words();
  flatbuffers::FlatBufferBuilder builder;
  auto body = proto::CreateAttachDirect(builder, shm::kLayoutVersion, &fields, process_id(), name_, true,
                                        client_slot_, generation_, &imported);
  Reply reply;
  return send_recv_on(sock, builder, proto::Body::Attach, body.Union(), nullptr, 0, &reply);
}

// Connects to the successor and takes our slot back; WB_OK once sock_ is the new connection, *done saying
// whether this call made it (rather than another thread meanwhile).
int Connection::reconnect(const std::vector<uint32_t> &imported, bool *done) {
  std::lock_guard lock(request_mutex_);
  *done = false;
  if (!broker_gone_.load()) return WB_OK;
  if (resume_refused_.load()) {
    return fail(WB_E_BROKER_GONE, "the broker is gone and its successor at %s did not take this client back: "
                "detach and attach again", socket_path_.c_str());
  }
  int sock = -1;
  int rc = connect_socket(socket_path_.c_str(), &sock);
  // What listens there, or the way to it, is not ours (WB_E_PERM): not a successor. One may still come.
  if (rc == WB_E_PERM) return fail(WB_E_BROKER_GONE, "the broker is gone, and no successor yet: %s", wb_last_error());
  if (rc != WB_OK) {
    return fail(WB_E_BROKER_GONE, "the broker is gone and no successor listens at %s yet", socket_path_.c_str());
  }
  ScopeExit close_sock([sock] { close(sock); });  // also when resuming runs out of memory
  rc = send_resume(sock, imported);
  if (rc != WB_OK) {
    if (rc != WB_E_BROKER_GONE && rc != WB_E_TIMEOUT && rc != WB_E_NOMEM) resume_refused_.store(true);
    return fail(WB_E_BROKER_GONE, "the broker is gone; its successor at %s refused to resume this client: %s",
                socket_path_.c_str(), wb_last_error());
  }
  // The new connection takes the old one's fd number: threads polling sock_ see it, with no race.
  rc = dup3(sock, sock_, O_CLOEXEC) < 0 ? fail_errno("dup3 of the new control socket") : WB_OK;
  if (rc != WB_OK) return fail(WB_E_BROKER_GONE, "the broker is gone; resuming failed: %s", wb_last_error());
  session_.fetch_add(1);
  broker_gone_.store(false);
  *done = true;
  return WB_OK;
}

int Connection::resume() {
  if (!broker_gone_.load()) return WB_OK;
  bool done = false;
  std::vector<uint32_t> imported;
  if (hooks_.imported != nullptr) imported = hooks_.imported(hooks_.context);
  int rc = reconnect(imported, &done);
  if (done && hooks_.resumed != nullptr) hooks_.resumed(hooks_.context);
  return rc;
}

// A broker that exits cleanly removes the segment: nothing is left for a successor to adopt.
bool Connection::segment_removed() const {
  struct stat st;
  return fstat(segment_fd_, &st) != 0 || st.st_nlink == 0;
}

int64_t Connection::successor_deadline_ns() const {
  if (timeout_ms_ < 0) return -1;
  return broker_gone_since_ns_.load() + timeout_ms_ * 1000000;
}

bool Connection::successor_may_come() {
  if (resume_refused_.load() || segment_removed()) return false;
  int64_t deadline = successor_deadline_ns();
  return deadline < 0 || monotonic_ns() < deadline;
}

int Connection::no_successor() {
  if (resume_refused_.load()) return WB_E_BROKER_GONE;
  if (segment_removed()) {
    return fail(WB_E_BROKER_GONE, "the broker at %s exited and removed its segment: no successor will take this "
                "client back; attach again", socket_path_.c_str());
  }
  return fail(WB_E_BROKER_GONE, "the broker at %s died and no successor took this client back within its "
              "timeout_ms (%lld ms): attach again", socket_path_.c_str(), (long long)timeout_ms_);
}

int Connection::check_broker_while_waiting() {
  if (!broker_gone() || resume() == WB_OK || successor_may_come()) return WB_OK;
  return no_successor();
}

int Connection::await_broker(const Deadline &deadline) {
  OutageWatch watch;
  bool watching = false;
  while (broker_gone() && resume() != WB_OK) {
    if (!successor_may_come()) return no_successor();
    int64_t remaining = deadline.remaining_ns();
    if (remaining == 0) {
      return fail(WB_E_TIMEOUT, "the broker at %s is gone and no successor took this client back within the "
                  "call's timeout", socket_path_.c_str());
    }
    // The watch starts after a first attempt (a successor is often there already), and another attempt follows
    // at once: a successor may have appeared before the watch began.
    if (!watching) {
      watching = true;
      watch.start(socket_path_, segment_fd_);
      continue;
    }
    watch.sleep(remaining < 0 ? kRetrySliceNs : std::min(remaining, kRetrySliceNs));
  }
  return WB_OK;
}

}  // namespace wb
