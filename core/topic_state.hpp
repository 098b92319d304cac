// Topic state transitions that both the publisher (library) and the broker (when a publisher dies) make.
#pragma once

#include <cstdint>

#include "layout.hpp"

namespace wb::topic_state {

// Tensors of topic t whose only replica is marked as being written in place (R = 1). Only the topic's writer,
// or the broker once the writer is gone, may call it.
uint32_t count_dirty(const shm::Segment &seg, const shm::Topic &t);

// Ends an update that will not be published (abort, or the publisher's death): recounts dirty tensors (R = 1),
// forgets replicas a publish that died half-way marked with the unpublished version (R >= 2), clears
// writing_version, puts floor back to what readers may acquire, and wakes acquirers and waiters.
void end_unpublished_update(const shm::Segment &seg, shm::Topic &t);

}  // namespace wb::topic_state
