// GPU arms: a reader's copies of a version enqueued on its stream before the version is published, behind a wait
// on an arm slot's word (layout.hpp: ArmSlot), and who writes that word. The library's reader side is
// libclient/cuda/arm_run.cpp; the publisher's claims are made where a version becomes visible (plain publish,
// the sharded commit), and the broker settles what a dead process left.
//
// A slot's life, in its state word (make_state: a 16-bit generation, the owner's client slot + 1, the kind):
//   kFree      -> kReserved   the reader takes it (compare-and-swap), the generation goes up by one
//   kReserved  -> kArmed      the reader stored version, place and replica, then the state (seq_cst)
//   kArmed     -> kClaimed    a publisher of that version claims it (compare-and-swap), then writes the token,
//                             from its stream once the version's GPU work is done, or at once
//   kArmed     -> kWithdrawn  the reader withdraws it (compare-and-swap) and writes token + 1 itself
//   kClaimed, kWithdrawn -> kFree   the reader, once its stream is past the wait
// The token is generation << 48 | version: the wait (cyclic >=) passes at the token or token + 1, and the copies
// run only at the token. A write a dead or slow process left queued for an earlier generation is below the
// token of every later arm of the slot, so it can neither let a later arm's copies run nor skip them.
//
// Dekker's handshake makes every arm seen: the reader stores kArmed then loads the topic's latest; a publisher
// stores latest then loads the states. Either the publisher sees the arm (and may claim it), or the reader sees
// the version published and withdraws the arm, which fails only if a publisher claimed it first.
#pragma once

#include <cstdint>

#include "layout.hpp"

namespace wb::arms {

enum Kind : uint64_t { kFree = 0, kReserved = 1, kArmed = 2, kClaimed = 3, kWithdrawn = 4 };

inline Kind kind(uint64_t state) { return Kind(state & 0xff); }
inline uint32_t owner(uint64_t state) { return uint32_t(state >> 8) & 0xffffff; }
inline uint64_t generation(uint64_t state) { return (state >> 32) & 0xffff; }
inline uint64_t make_state(uint64_t generation, uint32_t owner, Kind kind) {
  return (generation & 0xffff) << 32 | uint64_t(owner & 0xffffff) << 8 | kind;
}
// What the slot's word must hold for the copies of `version` armed in `state` to run.
inline uint64_t token(uint64_t state, uint64_t version) { return generation(state) << 48 | version; }
// Whether a word lets a wait for token pass: the cyclic >= of cuStreamWaitValue64.
inline bool reached(uint64_t word, uint64_t token) { return int64_t(word - token) >= 0; }

// The reader: takes a free slot of the topic for `owner` (client slot + 1), as kReserved with the next
// generation. Its index and *state, or shm::kNone when all kArmsPerTopic are taken.
inline uint32_t reserve(const shm::Segment &seg, uint32_t topic_slot, uint32_t owner, uint64_t *state) {
  for (uint32_t i = 0; i < shm::kArmsPerTopic; ++i) {
    shm::ArmSlot &slot = seg.arm(topic_slot, i);
    uint64_t free = slot.state.load(std::memory_order_acquire);
    if (kind(free) != kFree) continue;
    uint64_t reserved = make_state(generation(free) + 1, owner, kReserved);
    if (slot.state.compare_exchange_strong(free, reserved, std::memory_order_acq_rel)) {
      *state = reserved;
      return i;
    }
  }
  return shm::kNone;
}

// The reader: arms a reserved slot for version (word 0, version, place, replica, then kArmed, seq_cst). Returns
// the armed state. The caller loads the topic's latest next.
inline uint64_t arm(shm::ArmSlot &slot, uint64_t reserved, uint64_t version, uint64_t place, uint32_t replica) {
  slot.word.store(0, std::memory_order_relaxed);
  slot.version.store(version, std::memory_order_release);
  slot.place.store(place, std::memory_order_release);
  slot.replica.store(replica, std::memory_order_release);
  uint64_t armed = make_state(generation(reserved), owner(reserved), kArmed);
  slot.state.store(armed, std::memory_order_seq_cst);
  return armed;
}

// The reader: withdraws an armed slot. True when this call withdrew it: the word holds token + 1, so the stream
// goes on and the copies skip. False when a publisher claimed it first: its token is coming (the version is
// published), and the copies run.
inline bool withdraw(shm::ArmSlot &slot, uint64_t armed) {
  uint64_t expected = armed;
  uint64_t withdrawn = make_state(generation(armed), owner(armed), kWithdrawn);
  if (!slot.state.compare_exchange_strong(expected, withdrawn, std::memory_order_seq_cst)) return false;
  slot.word.store(token(armed, slot.version.load(std::memory_order_relaxed)) + 1, std::memory_order_release);
  return true;
}

// The reader, once its stream is past the slot's wait (the slot is claimed or withdrawn, or only reserved):
// frees it.
inline void release(shm::ArmSlot &slot, uint64_t state) {
  slot.state.store(make_state(generation(state), 0, kFree), std::memory_order_release);
}

// The publisher of `version` of the topic, after storing latest: claims each armed slot of that version whose
// place equals `place` and whose replica `fits`, and calls write(slot, token) for it. A slot that does not fit is
// left armed: its reader withdraws it and copies as without an arm.
template <typename Fits, typename Write>
void claim(const shm::Segment &seg, uint32_t topic_slot, uint64_t version, uint64_t place, Fits fits, Write write) {
  for (uint32_t i = 0; i < shm::kArmsPerTopic; ++i) {
    shm::ArmSlot &slot = seg.arm(topic_slot, i);
    uint64_t state = slot.state.load(std::memory_order_seq_cst);
    if (kind(state) != kArmed) continue;
    // Stored before the state (release): a state of another generation fails the compare-and-swap below.
    if (slot.version.load(std::memory_order_acquire) != version || slot.place.load(std::memory_order_acquire) != place ||
        !fits(slot.replica.load(std::memory_order_acquire))) {
      continue;
    }
    uint64_t claimed = make_state(generation(state), owner(state), kClaimed);
    if (slot.state.compare_exchange_strong(state, claimed, std::memory_order_seq_cst)) write(slot, token(state, version));
  }
}

// The broker, for a topic whose publisher (or a rank's) died: writes the token of every claimed slot of a
// published version that its word has not reached (the dead process's stream write may never land).
inline void settle(const shm::Segment &seg, uint32_t topic_slot) {
  uint64_t latest = seg.topic(topic_slot).latest.load(std::memory_order_seq_cst);
  for (uint32_t i = 0; i < shm::kArmsPerTopic; ++i) {
    shm::ArmSlot &slot = seg.arm(topic_slot, i);
    uint64_t state = slot.state.load(std::memory_order_acquire);
    uint64_t version = slot.version.load(std::memory_order_acquire);
    if (kind(state) != kClaimed || version > latest) continue;
    uint64_t t = token(state, version);
    if (!reached(slot.word.load(std::memory_order_acquire), t)) slot.word.store(t, std::memory_order_release);
  }
}

// The broker, for a client that is gone: frees its slots in every topic (its stream died with it).
inline void drop_owner(const shm::Segment &seg, uint32_t owner) {
  uint32_t topics = seg.header().topic_count.load(std::memory_order_acquire);
  for (uint32_t t = 0; t < topics && t < seg.caps().max_topics; ++t) {
    for (uint32_t i = 0; i < shm::kArmsPerTopic; ++i) {
      shm::ArmSlot &slot = seg.arm(t, i);
      uint64_t state = slot.state.load(std::memory_order_acquire);
      // A publisher may claim it meanwhile (the swap fails, and the claimed state is freed next): its write then
      // lands in a free slot, below any later arm's token.
      while (kind(state) != kFree && arms::owner(state) == owner &&
             !slot.state.compare_exchange_weak(state, make_state(generation(state), 0, kFree),
                                               std::memory_order_acq_rel)) {
      }
    }
  }
}

}  // namespace wb::arms
