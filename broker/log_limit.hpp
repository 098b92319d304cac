// Rate limiting of one log line's call site: a client that repeats what makes the broker log (a flood of bad
// requests, or the broker out of descriptors) must not fill the disk with the log. Pure logic, its clock given
// by the caller, so that tests drive it (tests/exhaustion/test-log-limiter-lets-a-burst-through.cpp).
#pragma once

#include <cstdint>

namespace wb::broker {

class LogLimiter {
 public:
  // Lines one call site may write per second; the rest are counted.
  static constexpr uint32_t kLinesPerSecond = 5;

  // Whether a line at now_ns (a monotonic clock) may be written. When it may, *suppressed is how many lines
  // were held back since the last one written, for the caller to say so first.
  bool admit(int64_t now_ns, uint64_t *suppressed);

 private:
  int64_t window_start_ns_ = 0;
  bool started_ = false;
  uint32_t written_ = 0;  // in the window that began at window_start_ns_
  uint64_t held_back_ = 0;
};

}  // namespace wb::broker
