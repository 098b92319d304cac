#include "copy_plan.hpp"

namespace wb::cuda {

namespace {

void add_to_launch(const Copy &c, std::vector<KernelLaunch> *launches) {
  if (launches->empty() || launches->back().params.count == WB_COPY_MAX_COPIES) launches->emplace_back();
  KernelLaunch &l = launches->back();
  wb_copy_desc &d = l.params.copies[l.params.count++];
  d.src = reinterpret_cast<uintptr_t>(c.src);
  d.dst = reinterpret_cast<uintptr_t>(c.dst);
  d.bytes = uint32_t(c.bytes);
  d.first_chunk = l.blocks;
  l.blocks += uint32_t((c.bytes + WB_COPY_CHUNK_BYTES - 1) / WB_COPY_CHUNK_BYTES);
}

}  // namespace

CopyPlan plan_copies(const std::vector<Copy> &copies, const std::function<bool(const Copy &)> &reaches) {
  CopyPlan plan;
  for (const Copy &c : copies) {
    if (!c.cuda || c.bytes == 0) continue;
    if (c.bytes < kKernelMaxBytes && reaches(c)) {
      add_to_launch(c, &plan.launches);
    } else {
      plan.per_copy.push_back(c);
    }
  }
  return plan;
}

}  // namespace wb::cuda
