// A reader's plan as pure arithmetic (no segment, no CUDA): which bytes of which source shard go where in a
// destination, as row copies, and which destination bytes are zero-filled. plan.cpp resolves names, shards and
// pointers around it; tests/shards/test-slice-plan-copies.cpp pins it copy by copy.
#pragma once

#include <cstdint>
#include <vector>

#include "region.hpp"

namespace wb::plan {

// `rows` runs of row_bytes each, the i-th at src_offset + i * src_pitch of source `source` and at dst_offset +
// i * dst_pitch of the destination; rows == 1 is a plain (1-D) copy.
struct RowCopy {
  uint32_t source = 0;  // the caller's index of the source
  uint64_t src_offset = 0;
  uint64_t dst_offset = 0;
  uint64_t row_bytes = 0;
  uint64_t rows = 1;
  uint64_t src_pitch = 0;
  uint64_t dst_pitch = 0;
};

// `rows` runs of row_bytes zeros at dst_offset + i * pitch.
struct ZeroFill {
  uint64_t dst_offset = 0;
  uint64_t row_bytes = 0;
  uint64_t rows = 1;
  uint64_t pitch = 0;
};

// A source: where it lies in the logical tensor, and its strides in elements (row-major contiguous for a shard).
struct Source {
  region::Box box;
  int64_t strides[WB_MAX_DIMS] = {};
};

// Where one part lands: the destination's strides in elements, the element size, and the part's place along
// concat_dim (the elements of the parts and pads before it).
struct Target {
  uint32_t concat_dim = 0;
  int64_t strides[WB_MAX_DIMS] = {};
  uint32_t element_bytes = 1;
  int64_t concat_offset = 0;
};

// The copies of `part` (a box of the logical tensor) from the sources that meet it, appended to *copies, and
// the volume they copy (elements), which equals the part's when the sources cover it.
uint64_t part_copies(const region::Box &part, const Target &target, const std::vector<Source> &sources,
                     std::vector<RowCopy> *copies);

// The zero fills of `pad` elements along concat_dim after `part` (its other extents), appended to *fills.
void pad_fills(const region::Box &part, int64_t pad, const Target &target, std::vector<ZeroFill> *fills);

// A candidate shard for a plan's sources: replicated ones of the same box are one source, of which the plan
// reads the one on the destination's GPU, else the lowest rank's.
struct Candidate {
  region::Box box;
  uint32_t rank = 0;
  bool replicated = false;
  bool on_dest_gpu = false;
};

// Indices into candidates of the shards a plan reads, in candidates' order.
std::vector<uint32_t> choose_sources(const std::vector<Candidate> &candidates);

}  // namespace wb::plan
