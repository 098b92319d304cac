#include "log_limit.hpp"

namespace wb::broker {

namespace {
constexpr int64_t kWindowNs = 1'000'000'000;
}

bool LogLimiter::admit(int64_t now_ns, uint64_t *suppressed) {
  if (!started_ || now_ns - window_start_ns_ >= kWindowNs) {
    started_ = true;
    window_start_ns_ = now_ns;
    written_ = 0;
  }
  if (written_ >= kLinesPerSecond) {
    ++held_back_;
    return false;
  }
  ++written_;
  *suppressed = held_back_;
  held_back_ = 0;
  return true;
}

}  // namespace wb::broker
