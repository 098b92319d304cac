// Cross-process futex on a 32-bit word in shared memory (no FUTEX_PRIVATE_FLAG: waiters live in other processes).
#pragma once

#include <atomic>
#include <cstdint>

namespace wb {

// Sleeps while *word == expected, at most timeout_ns (< 0: no limit). Returns 0 on a wake or a changed value,
// ETIMEDOUT, or EINTR; callers loop and recompute their deadline.
int futex_wait(std::atomic<uint32_t> *word, uint32_t expected, int64_t timeout_ns);
void futex_wake_all(std::atomic<uint32_t> *word);

// Bumps *seq and wakes its sleepers if any announced themselves in *waiters.
void bump_and_wake(std::atomic<uint32_t> *seq, std::atomic<uint32_t> *waiters);

}  // namespace wb
