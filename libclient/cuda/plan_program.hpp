// A resharding plan's GPU copies as the plan kernel (copy_kernel.cu's wb_copy_plan) runs them: descriptors made
// once per plan and context, grouped into launches. Pure logic, without the driver, so that it is tested without
// a GPU (tests/cuda/test-plan-program.cpp); plan_run.cpp uploads and launches it.
#pragma once

#include <cstdint>
#include <vector>

#include "copy_kernel_params.h"
#include "hooks.hpp"  // PlanCopy

namespace wb::cuda {

// How the kernel cuts a copy into chunks of at most WB_COPY_CHUNK_BYTES: whole rows, rows_per_chunk of them,
// where a row fits in half a chunk (so that narrow strided rows make chunks as large as wide ones); else every
// row in `pieces` chunks. *chunks is the copy's total.
void chunk_shape(uint64_t row_bytes, uint64_t rows, uint32_t *rows_per_chunk, uint32_t *pieces, uint64_t *chunks);

// Whether a descriptor holds the copy: non-empty, rows and each launch's chunks within 32 bits.
bool kernel_holds(const PlanCopy &c);

// One launch: descriptors [first, first + count) of the program, `chunks` in all, reading `sources`
// (indices into the plan's sources, in the order the launch passes their addresses).
struct PlanLaunch {
  uint32_t first = 0;
  uint32_t count = 0;
  uint32_t chunks = 0;
  std::vector<uint32_t> sources;
};

struct PlanProgram {
  std::vector<wb_plan_copy> copies;   // descriptors, each launch's consecutive
  std::vector<uint32_t> first_chunks; // per descriptor, counted from its launch's first block
  std::vector<uint32_t> origin;       // per descriptor, its index in make_program's argument
  std::vector<PlanLaunch> launches;
};

// Sources of a run's first launch: small, so that the GPU starts copying while the host looks up where the
// rest of the version's shards are; each next launch may read twice as many, up to WB_PLAN_MAX_SOURCES.
constexpr uint32_t kFirstLaunchSources = 64;

// The program of `copies` (each kernel_holds), in their order: a launch takes copies until the next would make
// it read more sources than its share (first_sources, doubling for each next launch, at most max_sources) or
// its chunks reach 2^31.
PlanProgram make_program(const std::vector<PlanCopy> &copies, uint32_t first_sources = kFirstLaunchSources,
                         uint32_t max_sources = WB_PLAN_MAX_SOURCES);

}  // namespace wb::cuda
