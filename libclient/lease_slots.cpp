// Taking and dropping this client's lease words (lease_slots.hpp).
#include "lease_slots.hpp"

#include <algorithm>

#include "clock.hpp"
#include "error.hpp"
#include "futex.hpp"
#include "lease.hpp"

namespace wb {

void LeaseSlots::init(std::atomic<uint64_t> *words, std::atomic<uint64_t> *times, uint32_t count) {
  words_ = words;
  times_ = times;
  taken_.assign(count, false);
}

int LeaseSlots::take(uint32_t *slot) {
  std::lock_guard lock(mutex_);
  auto free_slot = std::find(taken_.begin(), taken_.end(), false);
  if (free_slot == taken_.end()) {
    return fail(WB_E_NOSPC, "all %zu lease slots of this client are held (broker flag --leases-per-client)",
                taken_.size());
  }
  *free_slot = true;
  *slot = uint32_t(free_slot - taken_.begin());
  return WB_OK;
}

void LeaseSlots::hold(uint32_t slot, uint32_t topic_slot, uint64_t version) {
  times_[slot].store(uint64_t(monotonic_ns()), std::memory_order_relaxed);
  words_[slot].store(lease::pack(topic_slot, version), std::memory_order_seq_cst);
}

void LeaseSlots::clear(shm::Topic &topic, uint32_t slot) {
  words_[slot].store(0, std::memory_order_seq_cst);
  bump_and_wake(&topic.release_seq, &topic.release_waiters);
}

void LeaseSlots::drop(shm::Topic &topic, uint32_t slot) {
  clear(topic, slot);
  std::lock_guard lock(mutex_);
  taken_[slot] = false;
}

}  // namespace wb
