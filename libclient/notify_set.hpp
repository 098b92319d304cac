// What stands behind a topic's notify fd (notify.cpp): one epoll instance for the handle's lifetime, so that an
// event loop registers it once. Its members change with the broker: while one lives, the read end of the pipe
// whose write end that broker holds (readable on each publish, at end of file when the broker dies); while none
// does, what may end the outage: the watch for a successor (outage_watch.hpp) and a timer at the end of the
// wait for one.
#pragma once

#include <cstdint>
#include <mutex>

#include "outage_watch.hpp"

namespace wb {

struct NotifySet {
  NotifySet() = default;
  NotifySet(const NotifySet &) = delete;
  NotifySet &operator=(const NotifySet &) = delete;
  ~NotifySet() { reset(); }
  // Closes every descriptor: the set is as before the first wb_topic_notify_fd.
  void reset();

  std::mutex mutex;   // guards the members below: one wb_topic_notify_fd / wb_topic_notify_ack at a time
  int epoll = -1;     // the notify fd
  int timer = -1;     // timerfd, a member from the start; armed only during an outage
  int pipe = -1;      // read end, subscribed with the broker of the client's session `session`
  uint32_t session = 0;
  bool outage = false;  // the watch and the timer are in use
  OutageWatch watch;
};

}  // namespace wb
