// The broker's descriptor budget. Each descriptor the broker keeps for its clients (a connection, a notify pipe,
// a host allocation, a CUDA chunk) is counted here before it is kept, and refused with WB_E_NOSPC once keeping it
// would leave fewer than kReserve descriptors below RLIMIT_NOFILE: with those free the broker can always accept a
// connection, receive a message with its descriptors (at most wire::kMaxFds), answer it and close what it refuses.
// Without the reserve one client holding every descriptor left the broker unable to accept or answer anyone.
#pragma once

#include <cstdint>

namespace wb::broker {

class Descriptors {
 public:
  // Descriptors kept free below the limit. At least wire::kMaxFds (a message's) + 1 (an accepted connection);
  // the rest is room for what libuv or the log may open.
  static constexpr uint64_t kReserve = 16;

  // Starts the budget: limit is RLIMIT_NOFILE's soft limit, open_now what the process has open (counted from
  // then on with take and give_back). Before start every take succeeds (the fuzzers have no budget).
  void start(uint64_t limit, uint64_t open_now);
  // WB_OK and counts n more held, or WB_E_NOSPC naming the limit; `what` is what they are for ("a notify pipe").
  int take(uint64_t n, const char *what);
  // Whether n more fit, without counting them.
  bool fits(uint64_t n) const;
  void give_back(uint64_t n);
  uint64_t held() const { return held_; }
  uint64_t limit() const { return limit_; }

 private:
  bool started_ = false;
  uint64_t limit_ = 0;
  uint64_t held_ = 0;
};

// Raises the soft RLIMIT_NOFILE to the hard one and returns the soft limit in force: the broker keeps a
// descriptor per connection, allocation, notify pipe and CUDA chunk, and the usual soft limit of 1024 is below
// the default --max-allocations.
uint64_t raise_descriptor_limit();
// The descriptors this process has open (entries of /proc/self/fd), or 0 when that cannot be read.
uint64_t count_open_descriptors();

}  // namespace wb::broker
