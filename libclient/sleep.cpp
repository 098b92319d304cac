// Sleeping on a futex word in slices, checking the broker between them (sleep.hpp).
#include "sleep.hpp"

#include <algorithm>

#include "connection.hpp"
#include "futex.hpp"
#include "weightbus/weightbus.h"

namespace wb {

namespace {

// Sleep slices: a waiter re-checks the broker's socket this often, so its death is noticed promptly.
constexpr int64_t kSliceNs = 100'000'000;

}  // namespace

int sleep_on(Connection &connection, std::atomic<uint32_t> *word, std::atomic<uint32_t> *waiters, uint32_t expected,
             int64_t remaining_ns) {
  if (int rc = connection.check_broker_while_waiting(); rc != WB_OK) return rc;
  if (remaining_ns == 0) return WB_E_TIMEOUT;
  int64_t slice = remaining_ns < 0 ? kSliceNs : std::min(remaining_ns, kSliceNs);
  waiters->fetch_add(1, std::memory_order_seq_cst);
  futex_wait(word, expected, slice);
  waiters->fetch_sub(1, std::memory_order_seq_cst);
  return WB_OK;
}

}  // namespace wb
