// A client's GPU arms (core/arms.hpp): the arm slots its readers hold, from the arm until their streams are past
// the slot's wait. An arm whose version is published is finished: its copies are on the stream (a publisher
// claimed it) or it is withdrawn now and the reader copies as without it. Either way the slot is freed only once
// the stream is past the wait (an event recorded after the armed copies): a slot armed again earlier would see a
// write meant for this arm.
#pragma once

#include <cuda.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "layout.hpp"

namespace wb::cuda {

struct GpuArm {
  uint32_t topic_slot = 0;
  uint32_t index = 0;   // the slot among the topic's kArmsPerTopic
  uint64_t state = 0;   // the slot's state word as this arm armed it (core/arms.hpp: make_state)
  uint64_t version = 0;
  CUcontext context = nullptr;
  CUevent passed = nullptr;  // recorded after the armed copies: the stream is past the wait once it completes
  bool enqueued = false;     // the wait and the copies are on the stream
};

class GpuArms {
 public:
  GpuArms(const shm::Segment &seg, uint32_t client_id) : seg_(seg), owner_(client_id + 1) {}
  GpuArms(const GpuArms &) = delete;
  GpuArms &operator=(const GpuArms &) = delete;
  // Destroys the events; slots still held are the broker's to free (at detach, drop_owner).
  ~GpuArms();

  // Takes a free slot of the topic and arms it for version (place and replica: see ArmSlot), then checks latest:
  // *out the arm, or nullptr when no slot is free or the version was published first and the arm withdrawn
  // (nothing to do on the stream: the reader copies as without an arm).
  void arm(uint32_t topic_slot, uint64_t version, uint64_t place, uint32_t replica, std::unique_ptr<GpuArm> *out);

  // The arm's slot in the segment.
  shm::ArmSlot &slot(const GpuArm &arm) const { return seg_.arm(arm.topic_slot, arm.index); }

  // The armed version is published. True when its copies are on the stream and will run (a publisher claimed the
  // arm); false when they will not (withdrawn now, or nothing was enqueued): the caller copies. The arm is
  // retired: its slot is freed once the stream is past it.
  bool finish(std::unique_ptr<GpuArm> arm);

  // The reader will not copy the armed version (a release, an error, a version skipped): withdraws the arm, or,
  // when a publisher claimed it first, waits until its copies are done (the lease is dropped next, and an R = 1
  // publisher may then write over the version's bytes). Retires it.
  void drop(std::unique_ptr<GpuArm> arm);

  // The arm's hold ran out before its version came (weightbus.h, "GPU arms"): withdraws it, so that its stream
  // goes on with the copies skipped, and retires it (*arm reset): true. False when a publisher claimed it first
  // (its version is out, its copies coming): *arm is kept.
  bool withdraw(std::unique_ptr<GpuArm> *arm);

 private:
  // Withdraws an enqueued arm: false when done (or nothing was enqueued), true when a publisher claimed it first
  // (its version is out and its copies run).
  bool claimed_first(const GpuArm &arm);

  // Frees the slots of retired arms whose streams are past them. Under mutex_.
  void collect();
  void retire(std::unique_ptr<GpuArm> arm);

  const shm::Segment &seg_;
  uint32_t owner_;  // client slot + 1
  std::mutex mutex_;
  std::vector<std::unique_ptr<GpuArm>> retired_;
};

}  // namespace wb::cuda
