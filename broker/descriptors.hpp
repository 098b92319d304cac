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
  // then on with hold and release), clients the connections kept room for (--max-clients): what a client keeps
  // (notify pipes, allocations, chunks) may not take the room of another client's connection, so that a client
  // can attach however many descriptors the others hold. Before start every check succeeds (the fuzzers and
  // in-process tests have no budget).
  void start(uint64_t limit, uint64_t open_now, uint64_t clients);
  // WB_OK if n more descriptors may be kept for a client, else WB_E_NOSPC naming the limit; `what` is what
  // they are for ("keeping a notify pipe").
  int check(uint64_t n, const char *what) const;
  // WB_OK if one more connection may be kept, else WB_E_NOSPC naming the limit.
  int check_connection() const;
  // Counts n more kept (after check), or n fewer.
  void hold(uint64_t n) { held_ += n; }
  void release(uint64_t n) { held_ = n > held_ ? 0 : held_ - n; }
  void hold_connection() {
    ++held_;
    ++connections_;
  }
  void release_connection() {
    release(1);
    if (connections_ > 0) --connections_;
  }
  uint64_t limit() const { return limit_; }

 private:
  bool started_ = false;
  uint64_t limit_ = 0;
  uint64_t held_ = 0;         // all the process has open but the reserve: its own, connections, the rest
  uint64_t connections_ = 0;  // of held_
  uint64_t clients_ = 0;
};

// Raises the soft RLIMIT_NOFILE to the hard one and returns the soft limit in force: the broker keeps a
// descriptor per connection, allocation, notify pipe and CUDA chunk, and the usual soft limit of 1024 is below
// the default --max-allocations.
uint64_t raise_descriptor_limit();
// The descriptors this process has open (entries of /proc/self/fd), or 0 when that cannot be read.
uint64_t count_open_descriptors();

}  // namespace wb::broker
