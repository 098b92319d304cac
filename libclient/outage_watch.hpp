// What wakes a client waiting for a successor broker, so that it need not poll: an inotify instance watching
// the socket's directory for a name appearing (a successor renames its socket over the path once it is ready,
// broker/server.cpp) and the segment for its unlink (a broker that exits cleanly removes it: no successor will
// come). A wake-up says only "look again": the caller tries to resume, and ends the wait when no successor may
// come (connection.cpp).
#pragma once

#include <cstdint>
#include <string>

namespace wb {

class OutageWatch {
 public:
  OutageWatch() = default;
  OutageWatch(const OutageWatch &) = delete;
  OutageWatch &operator=(const OutageWatch &) = delete;
  ~OutageWatch() { stop(); }

  // Starts watching socket_path's directory and the segment open as segment_fd (nothing if it already does).
  // False when inotify is not to be had (fs.inotify.max_user_instances reached, no /proc): callers then look
  // again in slices.
  bool start(const std::string &socket_path, int segment_fd);
  void stop();
  bool started() const { return fd_ >= 0; }
  // The inotify descriptor: readable once something happened (-1 when not started).
  int fd() const { return fd_; }
  // Discards what happened so far.
  void drain();
  // Sleeps until something happens or timeout_ns passes (the whole time when not started), then drains.
  void sleep(int64_t timeout_ns);

 private:
  int fd_ = -1;
};

}  // namespace wb
