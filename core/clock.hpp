// Monotonic deadlines for the library's timeouts.
#pragma once

#include <cstdint>
#include <ctime>

namespace wb {

inline int64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

inline int64_t realtime_ns() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// A point in time computed from a timeout in milliseconds; negative timeouts never expire.
class Deadline {
 public:
  explicit Deadline(int64_t timeout_ms)
      : at_(timeout_ms < 0 ? -1 : monotonic_ns() + timeout_ms * 1000000) {}
  bool unlimited() const { return at_ < 0; }
  // Nanoseconds left, 0 when expired, -1 when unlimited.
  int64_t remaining_ns() const {
    if (at_ < 0) return -1;
    int64_t left = at_ - monotonic_ns();
    return left > 0 ? left : 0;
  }
  bool expired() const { return at_ >= 0 && monotonic_ns() >= at_; }
  int64_t remaining_ms() const {
    int64_t ns = remaining_ns();
    return ns < 0 ? -1 : (ns + 999999) / 1000000;
  }

 private:
  int64_t at_;
};

}  // namespace wb
