// Sleeping on a topic's futex word while watching the broker: the waits of begin (leases), acquire and
// wb_topic_wait, which must notice the broker's death within WB_E_BROKER_GONE's promise.
#pragma once

#include <atomic>
#include <cstdint>

namespace wb {

class Connection;

// Sleeps on word until it moves from expected, the deadline passes or the broker dies, in slices short enough
// to notice the broker's death. Returns WB_OK (woken or moved, or a slice passed), WB_E_TIMEOUT or
// WB_E_BROKER_GONE.
int sleep_on(Connection &connection, std::atomic<uint32_t> *word, std::atomic<uint32_t> *waiters, uint32_t expected,
             int64_t remaining_ns);

}  // namespace wb
