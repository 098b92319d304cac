#include "topic_state.hpp"

#include <algorithm>

#include "futex.hpp"

namespace wb::topic_state {

uint32_t count_dirty(const shm::Segment &seg, const shm::Topic &t) {
  uint32_t count = t.tensor_count.load(std::memory_order_acquire);
  uint32_t dirty = 0;
  uint32_t i = count > 0 ? t.first_tensor : shm::kNone;
  for (uint32_t n = 0; n < count && i < seg.caps().max_tensors; ++n) {
    const shm::Tensor &e = seg.tensor(i);
    uint64_t word = e.replica_version[0].load(std::memory_order_acquire);
    if (!e.is_view && word != shm::kNeverWritten && (word & shm::kWritingBit)) ++dirty;
    i = e.next.load(std::memory_order_acquire);
  }
  return dirty;
}

namespace {

// R >= 2: a writer that died inside wb_update_publish may have stored the replica_version of some tensors but
// not `latest`. Those replicas hold an unpublished version: left as they are, the next writer would take one
// of them for the newest and overwrite the replica that serves the latest version, and readers of its number
// (the next writer publishes it again) would read the dead writer's bytes for tensors it does not rewrite.
void forget_unpublished_replicas(const shm::Segment &seg, const shm::Topic &t, uint64_t latest) {
  uint32_t count = t.tensor_count.load(std::memory_order_acquire);
  uint32_t i = count > 0 ? t.first_tensor : shm::kNone;
  for (uint32_t n = 0; n < count && i < seg.caps().max_tensors; ++n) {
    shm::Tensor &e = seg.tensor(i);
    for (uint32_t r = 0; !e.is_view && r < t.replicas && r < WB_MAX_REPLICAS; ++r) {
      uint64_t word = e.replica_version[r].load(std::memory_order_acquire);
      if (word != shm::kNeverWritten && word > latest) e.replica_version[r].store(shm::kNeverWritten);
    }
    i = e.next.load(std::memory_order_acquire);
  }
}

}  // namespace

void end_unpublished_update(const shm::Segment &seg, shm::Topic &t) {
  uint64_t latest = t.latest.load(std::memory_order_seq_cst);
  if (t.replicas == 1) {
    t.dirty_tensors.store(count_dirty(seg, t), std::memory_order_seq_cst);
    t.floor.store(latest, std::memory_order_seq_cst);
  } else {
    forget_unpublished_replicas(seg, t, latest);
    t.floor.store(std::min(t.floor.load(), latest), std::memory_order_seq_cst);
  }
  t.writing_version.store(0, std::memory_order_seq_cst);
  bump_and_wake(&t.version_seq, &t.version_waiters);
}

}  // namespace wb::topic_state
