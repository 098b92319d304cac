#include "bookkeeping.hpp"

#include <algorithm>

namespace wbrelay {

std::vector<uint32_t> tensors_needed(const std::vector<uint64_t> &written_by, uint64_t held) {
  std::vector<uint32_t> out;
  for (uint32_t i = 0; i < written_by.size(); ++i)
    if (held == 0 || written_by[i] > held) out.push_back(i);
  return out;
}

std::vector<Transfer> plan_transfers(const std::vector<uint64_t> &held, uint64_t v) {
  if (held.empty()) return {};
  bool same = std::all_of(held.begin(), held.end(), [&](uint64_t h) { return h == held.front(); });
  if (same && held.front() == v) return {};
  if (same) return {Transfer{true, 0, held.front()}};
  std::vector<Transfer> out;
  for (uint32_t i = 0; i < held.size(); ++i)
    if (held[i] != v) out.push_back(Transfer{false, i, held[i]});
  return out;
}

}  // namespace wbrelay
