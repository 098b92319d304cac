// This client's lease words (its row of the segment's lease table, lease.hpp) and which of them are taken:
// a snapshot holds one from acquire to release. Only this client writes its row; the broker reads it, and
// clears it when the client dies.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

#include "layout.hpp"

namespace wb {

class LeaseSlots {
 public:
  // The client's row: count lease words, followed by as many acquire times (shm::Segment::leases).
  void init(std::atomic<uint64_t> *words, std::atomic<uint64_t> *times, uint32_t count);
  // Takes a free slot: WB_E_NOSPC when every one is held.
  int take(uint32_t *slot);
  // Writes a taken slot's lease on version of the topic in topic_slot: its acquire time first, so that a lister
  // that sees the lease word sees this acquire's time (or a later one of the same word).
  void hold(uint32_t slot, uint32_t topic_slot, uint64_t version);
  // Clears the lease word and wakes a publisher waiting for the topic's leases to go; the slot stays taken.
  void clear(shm::Topic &topic, uint32_t slot);
  // clear, and frees the slot.
  void drop(shm::Topic &topic, uint32_t slot);

 private:
  std::atomic<uint64_t> *words_ = nullptr;
  std::atomic<uint64_t> *times_ = nullptr;
  std::mutex mutex_;  // guards taken_
  std::vector<bool> taken_;
};

}  // namespace wb
