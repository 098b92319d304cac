#include "gpu_arms.hpp"

#include <algorithm>

#include "arms.hpp"
#include "driver.hpp"

namespace wb::cuda {

namespace {

void destroy_event(const GpuArm &arm) {
  const Driver *d = nullptr;
  ContextGuard guard;
  if (arm.passed != nullptr && driver(&d) == WB_OK && guard.push(arm.context) == WB_OK) d->cuEventDestroy(arm.passed);
}

// Whether the stream is past the arm's wait: its event completed (an error counts: the stream is gone).
bool passed(const GpuArm &arm) {
  if (!arm.enqueued) return true;
  const Driver *d = nullptr;
  ContextGuard guard;
  if (arm.passed == nullptr || driver(&d) != WB_OK || guard.push(arm.context) != WB_OK) return false;
  return d->cuEventQuery(arm.passed) != CUDA_ERROR_NOT_READY;
}

}  // namespace

GpuArms::~GpuArms() {
  for (auto &arm : retired_) destroy_event(*arm);
}

void GpuArms::arm(uint32_t topic_slot, uint64_t version, uint64_t place, uint32_t replica,
                  std::unique_ptr<GpuArm> *out) {
  out->reset();
  auto made = std::make_unique<GpuArm>();
  {
    std::lock_guard lock(mutex_);
    collect();
  }
  uint64_t state = 0;
  uint32_t index = arms::reserve(seg_, topic_slot, owner_, &state);
  if (index == shm::kNone) return;
  shm::ArmSlot &s = seg_.arm(topic_slot, index);
  state = arms::arm(s, state, version, place, replica);
  // Dekker's handshake with the publisher (arms.hpp): published already, the arm may not have been seen.
  if (seg_.topic(topic_slot).latest.load(std::memory_order_seq_cst) >= version && arms::withdraw(s, state)) {
    arms::release(s, state);
    return;
  }
  made->topic_slot = topic_slot;
  made->index = index;
  made->state = state;
  made->version = version;
  *out = std::move(made);
}

bool GpuArms::claimed_first(const GpuArm &arm) { return arm.enqueued && !arms::withdraw(slot(arm), arm.state); }

bool GpuArms::finish(std::unique_ptr<GpuArm> arm) {
  bool runs = claimed_first(*arm);
  retire(std::move(arm));
  return runs;
}

void GpuArms::drop(std::unique_ptr<GpuArm> arm) {
  if (claimed_first(*arm)) {
    const Driver *d = nullptr;
    ContextGuard guard;
    if (arm->passed != nullptr && driver(&d) == WB_OK && guard.push(arm->context) == WB_OK) {
      d->cuEventSynchronize(arm->passed);
    }
  }
  retire(std::move(arm));
}

bool GpuArms::withdraw(std::unique_ptr<GpuArm> *arm) {
  if (claimed_first(**arm)) return false;
  retire(std::move(*arm));
  return true;
}

void GpuArms::retire(std::unique_ptr<GpuArm> arm) {
  std::lock_guard lock(mutex_);
  retired_.push_back(std::move(arm));
  collect();
}

void GpuArms::collect() {
  std::erase_if(retired_, [this](const std::unique_ptr<GpuArm> &arm) {
    if (!passed(*arm)) return false;
    arms::release(slot(*arm), arm->state);
    destroy_event(*arm);
    return true;
  });
}

}  // namespace wb::cuda
