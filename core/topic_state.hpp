// Topic state transitions that both the publisher (library) and the broker (when a publisher dies) make.
#pragma once

#include <cstdint>
#include <string>

#include "layout.hpp"

namespace wb::topic_state {

// Tensors of topic t whose only replica is marked as being written in place (R = 1). Only the topic's writer,
// or the broker once the writer is gone, may call it.
uint32_t count_dirty(const shm::Segment &seg, const shm::Topic &t);

// Ends an update that will not be published (abort, or the publisher's death): recounts dirty tensors (R = 1),
// forgets replicas a publish that died half-way marked with the unpublished version (R >= 2), clears
// writing_version, puts floor back to what readers may acquire, and wakes acquirers and waiters.
void end_unpublished_update(const shm::Segment &seg, shm::Topic &t);

// Sharded topics (docs/sharded-models.md, "Versions").

// Rank entry `rank` of sharded topic t, or nullptr when the topic's rank table lies outside the segment's (a
// segment a same-uid process scribbled over) or rank >= t.ranks.
shm::Rank *rank_entry(const shm::Segment &seg, const shm::Topic &t, uint32_t rank);

// Raises the floor to `floor` unless it is higher already: on a sharded topic every rank's begin stores it, and
// the floor only rises (a rank's abort lowering it could race another rank's begin raising it).
void raise_floor(shm::Topic &t, uint64_t floor);

// Ends rank `rank`'s version that will not be published (its abort, or its publisher's death or close): R >= 2
// forgets the replicas of its shards that hold a version after latest (never other ranks': theirs may hold a
// version they published), R = 1 counts its shards left half-written into Rank::dirty_tensors and the topic's
// sum; clears its writing_version and wakes waiters. The floor stays. Nothing is undone once the rank's
// published reached latest + 1: its part of that version is final. Only the rank's writer, or the broker once
// the writer is gone, may call it.
void end_rank_update(const shm::Segment &seg, shm::Topic &t, uint32_t rank);

// Commits version latest + 1 of sharded topic t (in the segment's topic slot topic_slot) if every rank has
// published it: its record's version word, then latest, then wakes waiters. Any rank's publisher and the broker
// may call it at any time, concurrently: the record's claim (kRecordPending | v to v, one winner per version and
// ring slot) and latest's compare-and-swap make each version commit once, and a caller that finds the record
// claimed by one that died before storing latest finishes it. True when this call stored latest.
bool commit_rank_version(const shm::Segment &seg, shm::Topic &t, uint32_t topic_slot);

// The ranks that version latest + 1 still waits for, when some rank already published it (else ""), as
// "3 (pid 812, last published 41, 5.2 s ago), 5 (no publisher, ...)" with details, or "3, 5" without.
std::string lagging_ranks(const shm::Segment &seg, const shm::Topic &t, bool details);

// What a reader's wait on sharded topic t waits for, to end its timeout's message: " (model version 42 waits for
// rank(s) 3)" while some rank has published the version after latest, else "".
std::string waiting_for(const shm::Segment &seg, const shm::Topic &t);

// The ranks that have not sealed their layout, as "1, 3".
std::string unsealed_ranks(const shm::Segment &seg, const shm::Topic &t);

}  // namespace wb::topic_state
