// Per-client limits: what one client (one connection) may make the broker create, so that a runaway client
// cannot take every table entry or all host memory from the others (weightbusd --max-*-per-client).
#pragma once

#include <cstdint>

namespace wb::broker {

struct Quota {
  uint32_t topics = 0;
  uint32_t tensors = 0;  // tensors and views
  uint32_t allocations = 0;
  uint64_t bytes = 0;  // host shared memory (CUDA memory is its exporter's own)
  uint32_t subscriptions = 0;  // notify pipes held at once (each is a descriptor in the broker)
  uint32_t chunks = 0;         // CUDA VMM chunks registered (each is a descriptor in the broker)
};

// WB_OK if used + more stays within limit, else WB_E_NOSPC naming the limit and its flag.
int check_quota(const Quota &used, const Quota &more, const Quota &limit);
void add_quota(Quota *used, const Quota &more);

}  // namespace wb::broker
