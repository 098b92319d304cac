// wb_plan, the handle of wb_plan_create (plan.cpp): destinations resolved into copies, run every version.
#pragma once

#include <cstdint>

#include "weightbus/weightbus.h"

namespace wb {

namespace cuda {
struct GpuArm;
}

// The topic handle the plan was made on (its arms lease versions of it: armed.cpp).
wb_topic *plan_topic(const wb_plan *plan);

// Enqueues the plan's copies of `version`, not yet published, on stream behind a GPU arm (core/arms.hpp), from
// where its sources will be: R = 1, where the last run found them while the allocations stay as they were; R = 2,
// the replica after the latest's. *out the arm, or nullptr where the plan cannot be armed so (host destinations,
// conversions, a plan not yet run, R > 2, or the reasons of cuda::arm_plan_on_stream): then the reader copies once
// the version is published.
int arm_plan(wb_plan *plan, uint64_t version, void *stream, cuda::GpuArm **out);

// Counts an arm of the plan made (a GPU arm or not), and a wait that found a GPU arm's copies made
// (wb_plan_info's arms, gpu_arms, gpu_arms_claimed). Any thread.
void count_arm(wb_plan *plan, bool gpu);
void count_claimed(wb_plan *plan);

}  // namespace wb
