#include "outage_watch.hpp"

#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <string>

namespace wb {

bool OutageWatch::start(const std::string &socket_path, int segment_fd) {
  if (fd_ >= 0) return true;
  size_t slash = socket_path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : socket_path.substr(0, slash);
  // The segment through this process's descriptor: its name is the broker's, and it may already be unlinked.
  std::string segment = "/proc/self/fd/" + std::to_string(segment_fd);
  int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
  if (fd < 0) return false;
  if (inotify_add_watch(fd, dir.c_str(), IN_CREATE | IN_MOVED_TO | IN_ONLYDIR) < 0 ||
      inotify_add_watch(fd, segment.c_str(), IN_ATTRIB) < 0) {  // an unlink changes the link count: IN_ATTRIB
    close(fd);
    return false;
  }
  fd_ = fd;
  return true;
}

void OutageWatch::stop() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

void OutageWatch::drain() {
  alignas(inotify_event) char events[4096];
  while (fd_ >= 0 && read(fd_, events, sizeof(events)) > 0) {
  }
}

void OutageWatch::sleep(int64_t timeout_ns) {
  pollfd pfd{fd_, POLLIN, 0};
  poll(&pfd, fd_ >= 0 ? 1 : 0, int((timeout_ns + 999999) / 1000000));
  drain();
}

}  // namespace wb
