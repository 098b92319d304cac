#include "copy_plan.hpp"

#include <algorithm>
#include <memory>

namespace wb::cuda {

namespace {

void add(const Copy &c, KernelLaunch *l) {
  wb_copy_desc &d = l->params.copies[l->params.count++];
  d.src = reinterpret_cast<uintptr_t>(c.src);
  d.dst = reinterpret_cast<uintptr_t>(c.dst);
  d.bytes = uint32_t(c.bytes);
  d.first_chunk = l->blocks;
  l->blocks += uint32_t((c.bytes + WB_COPY_CHUNK_BYTES - 1) / WB_COPY_CHUNK_BYTES);
}

}  // namespace

int plan_copies(const std::vector<Copy> &copies, const std::function<bool(const Copy &)> &reaches,
                const std::function<int(const KernelLaunch &)> &launch, std::vector<Copy> *per_copy) {
  auto next = std::make_unique<KernelLaunch>();  // 32 KiB of parameters: not on the stack
  uint32_t full_at = kFirstLaunchCopies;
  int rc = 0;
  for (const Copy &c : copies) {
    if (!c.cuda || c.bytes == 0) continue;
    if (c.bytes >= kKernelMaxBytes || !reaches(c)) {
      per_copy->push_back(c);
      continue;
    }
    add(c, next.get());
    if (next->params.count < full_at) continue;
    if ((rc = launch(*next)) != 0) return rc;
    next = std::make_unique<KernelLaunch>();
    full_at = std::min(2 * full_at, WB_COPY_MAX_COPIES);
  }
  return next->params.count > 0 ? launch(*next) : 0;
}

}  // namespace wb::cuda
