// The notify fd: an epoll set whose members follow the client's broker (notify_set.hpp), and the call that
// brings them up to date each time the set is readable.
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "client.hpp"
#include "clock.hpp"
#include "error.hpp"
#include "scope_exit.hpp"
#include "topic.hpp"

namespace wb {

namespace {

// How often a set without an outage watch (no inotify to be had) looks for a successor.
constexpr int64_t kLookAgainNs = 100'000'000;

bool add_member(const NotifySet &set, int fd) {
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = fd;
  return epoll_ctl(set.epoll, EPOLL_CTL_ADD, fd, &event) == 0;
}

// Removed before it is closed: a copy of the descriptor in a forked child would otherwise keep it a member.
void remove_member(const NotifySet &set, int fd) { epoll_ctl(set.epoll, EPOLL_CTL_DEL, fd, nullptr); }

int create_set(NotifySet &set) {
  set.epoll = epoll_create1(EPOLL_CLOEXEC);
  if (set.epoll < 0) return fail_errno("epoll_create1 for the notify fd");
  set.timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
  if (set.timer < 0) return fail_errno("timerfd_create for the notify fd");
  if (!add_member(set, set.timer)) return fail_errno("epoll_ctl adding the notify fd's timer");
  return WB_OK;
}

void drop_pipe(NotifySet &set) {
  if (set.pipe < 0) return;
  remove_member(set, set.pipe);
  close(set.pipe);
  set.pipe = -1;
}

// Reads what the pipe holds. A pipe at end of file (its broker is gone) leaves the set, which it would keep
// readable; whether the broker is gone is the client's socket's to say (refresh).
void drain_pipe(NotifySet &set) {
  char bytes[256];
  while (set.pipe >= 0) {
    ssize_t n = read(set.pipe, bytes, sizeof(bytes));
    if (n == 0) return drop_pipe(set);
    if (n < 0 && errno != EINTR) return;  // EAGAIN: drained
  }
}

void drain_timer(const NotifySet &set) {
  uint64_t expirations;
  (void)!read(set.timer, &expirations, sizeof(expirations));
}

// Arms the timer to fire at at_ns (CLOCK_MONOTONIC), or disarms it for a negative at_ns.
int arm_timer(const NotifySet &set, int64_t at_ns) {
  itimerspec spec{};
  if (at_ns >= 0) spec.it_value = {time_t(at_ns / 1000000000), long(at_ns % 1000000000)};
  if (timerfd_settime(set.timer, TFD_TIMER_ABSTIME, &spec, nullptr) != 0) {
    return fail_errno("timerfd_settime of the notify fd's timer");
  }
  return WB_OK;
}

void start_watch(NotifySet &set, const Connection &connection) {
  if (set.watch.started() || !set.watch.start(connection.socket_path(), connection.segment_fd())) return;
  if (!add_member(set, set.watch.fd())) set.watch.stop();  // the timer looks again in slices instead
}

void end_outage(NotifySet &set) {
  if (!set.outage) return;
  if (set.watch.started()) remove_member(set, set.watch.fd());
  set.watch.stop();
  arm_timer(set, -1);
  drain_timer(set);
  set.outage = false;
}

// The broker is gone: the set's members become what may end the wait for a successor, the watch first and the
// attempt to resume after it, so that a successor that appears in between still wakes the set. *waiting: no
// successor took the client back yet, and one may still come (the timer fires when none may any more).
int await_successor(wb_topic *topic, bool *waiting) {
  NotifySet &set = topic->notify;
  Connection &connection = topic->client->connection;
  drop_pipe(set);
  start_watch(set, connection);
  set.outage = true;
  *waiting = connection.resume() != WB_OK;
  if (!*waiting) return WB_OK;
  if (!connection.successor_may_come()) return connection.no_successor();
  int64_t end = connection.successor_deadline_ns();
  if (!set.watch.started()) {
    int64_t again = monotonic_ns() + kLookAgainNs;
    end = end < 0 ? again : std::min(end, again);
  }
  return arm_timer(set, end);
}

// A new pipe for the client's current broker, replacing the set's old one. The request is built before the
// pipe is made, and each end closed on every way out, so that running out of memory leaks no descriptor.
int subscribe(wb_topic *topic) {
  NotifySet &set = topic->notify;
  Connection &connection = topic->client->connection;
  flatbuffers::FlatBufferBuilder builder;
  auto body = proto::CreateSubscribe(builder, topic->slot);
  Reply reply;
  int ends[2];
  if (pipe2(ends, O_CLOEXEC | O_NONBLOCK) != 0) return fail_errno("pipe2");
  ScopeExit close_read_end([&ends] { close(ends[0]); });
  int rc;
  {
    // The broker holds the write end once subscribed: its death turns into end of file here.
    ScopeExit close_write_end([&ends] { close(ends[1]); });
    rc = connection.call(builder, proto::Body::Subscribe, body.Union(), &reply, &ends[1], 1);
  }
  if (rc == WB_OK && !add_member(set, ends[0])) rc = fail_errno("epoll_ctl adding the notify pipe");
  if (rc != WB_OK) return rc;
  close_read_end.release();
  drop_pipe(set);
  set.pipe = ends[0];
  set.session = connection.session();  // after the call, which may have resumed the client
  return WB_OK;
}

// Brings the set's members in line with the client's broker: WB_OK with the pipe of the live broker, or while a
// successor may still come; WB_E_BROKER_GONE once none may.
int refresh(wb_topic *topic) {
  NotifySet &set = topic->notify;
  Connection &connection = topic->client->connection;
  for (;;) {
    if (connection.broker_gone()) {
      bool waiting = false;
      int rc = await_successor(topic, &waiting);
      if (rc != WB_OK || waiting) return rc;
    }
    end_outage(set);
    if (set.pipe >= 0 && set.session == connection.session()) return WB_OK;
    int rc = subscribe(topic);
    if (rc != WB_E_BROKER_GONE || !connection.broker_gone()) return rc;  // else it died meanwhile: await a successor
  }
}

}  // namespace

}  // namespace wb

using namespace wb;

extern "C" WB_API int wb_topic_notify_fd(wb_topic *topic, int *fd) try {
  if (topic == nullptr || fd == nullptr) return fail(WB_E_INVAL, "topic or fd is NULL");
  NotifySet &set = topic->notify;
  std::lock_guard lock(set.mutex);
  if (set.epoll < 0) {
    ScopeExit reset([&set] { set.reset(); });  // on every way out, running out of memory included
    int rc = create_set(set);
    if (rc == WB_OK) rc = refresh(topic);
    if (rc != WB_OK) return rc;
    reset.release();
  }
  *fd = set.epoll;
  return WB_OK;
} catch (...) {
  return wb::abi_error(__func__);
}

extern "C" WB_API int wb_topic_notify_ack(wb_topic *topic, uint64_t *latest) try {
  if (topic == nullptr || latest == nullptr) return fail(WB_E_INVAL, "topic or latest is NULL");
  NotifySet &set = topic->notify;
  std::lock_guard lock(set.mutex);
  if (set.epoll < 0) {
    return fail(WB_E_STATE, "topic '%s' has no notify fd yet: call wb_topic_notify_fd first", topic->entry->name);
  }
  // Drained first: whatever happens after this makes the set readable again.
  drain_pipe(set);
  set.watch.drain();
  drain_timer(set);
  if (int rc = check_topic_live(topic); rc != WB_OK) return rc;
  if (int rc = refresh(topic); rc != WB_OK) return rc;
  *latest = topic->entry->latest.load(std::memory_order_acquire);
  return WB_OK;
} catch (...) {
  return wb::abi_error(__func__);
}
