// Version bookkeeping: what each sink holds and what it needs. A sink holds the source's version h when it
// published h from the source's bytes; to reach version v it needs the tensors whose bytes were written after
// h (wb_tensor_info.version > h), all of them when it holds nothing (h = 0). Sinks holding the same version
// get one broadcast; a sink that joined late or fell behind gets its own transfer first.
#pragma once

#include <cstdint>
#include <vector>

namespace wbrelay {

// Indices of the tensors, among written_by[] (each tensor's wb_tensor_info.version), that a sink holding
// version held needs.
std::vector<uint32_t> tensors_needed(const std::vector<uint64_t> &written_by, uint64_t held);

// One transfer of version v: to every member of the group at once (broadcast), or to one member.
struct Transfer {
  bool broadcast = false;
  uint32_t member = 0;  // index into the held[] the plan was made from, when not a broadcast
  uint64_t from = 0;    // the version the receivers hold
};

// The transfers that bring every member (held[i]: the version member i holds, never above v) to version v:
// nothing for members at v; one broadcast when all hold the same older version; else one transfer each to the
// members behind.
std::vector<Transfer> plan_transfers(const std::vector<uint64_t> &held, uint64_t v);

}  // namespace wbrelay
