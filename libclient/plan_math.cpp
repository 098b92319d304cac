#include "plan_math.hpp"

namespace wb::plan {

namespace {

struct Dim {
  int64_t extent;
  int64_t src_stride;
  int64_t dst_stride;
};

// Dimensions of extent 1 add nothing to a copy's shape and would only stop the coalescing below.
std::vector<Dim> dims_of(uint32_t ndim, const int64_t *extent, const int64_t *src_strides, const int64_t *dst_strides) {
  std::vector<Dim> dims;
  for (uint32_t d = 0; d < ndim; ++d) {
    if (extent[d] != 1) dims.push_back({extent[d], src_strides[d], dst_strides[d]});
  }
  return dims;
}

// Merges the innermost dimensions that are contiguous on both sides into one run of elements.
int64_t take_run(std::vector<Dim> *dims) {
  int64_t run = 1;
  while (!dims->empty() && dims->back().src_stride == run && dims->back().dst_stride == run) {
    run *= dims->back().extent;
    dims->pop_back();
  }
  return run;
}

// Merges neighbouring outer dimensions that step evenly on both sides (rows spread over several dimensions of a
// box that is whole in between), so that they make one pitch.
void merge_outer(std::vector<Dim> *dims) {
  for (size_t i = dims->size(); i-- > 1;) {
    Dim &outer = (*dims)[i - 1];
    const Dim &inner = (*dims)[i];
    if (outer.src_stride != inner.src_stride * inner.extent || outer.dst_stride != inner.dst_stride * inner.extent) {
      continue;
    }
    outer = {outer.extent * inner.extent, inner.src_stride, inner.dst_stride};
    dims->erase(dims->begin() + long(i));
  }
}

// The copies of a box of `extent` between two strided layouts (elements), starting at the given byte offsets:
// one run per row of the innermost outer dimension, one 2-D copy per index of the dimensions above it.
void box_runs(uint32_t ndim, const int64_t *extent, uint64_t src_base, const int64_t *src_strides, uint64_t dst_base,
              const int64_t *dst_strides, uint32_t element_bytes, uint32_t source, std::vector<RowCopy> *out) {
  for (uint32_t d = 0; d < ndim; ++d) {
    if (extent[d] == 0) return;
  }
  std::vector<Dim> dims = dims_of(ndim, extent, src_strides, dst_strides);
  const uint64_t es = element_bytes;
  RowCopy copy;
  copy.source = source;
  copy.row_bytes = uint64_t(take_run(&dims)) * es;
  merge_outer(&dims);
  if (!dims.empty()) {
    copy.rows = uint64_t(dims.back().extent);
    copy.src_pitch = uint64_t(dims.back().src_stride) * es;
    copy.dst_pitch = uint64_t(dims.back().dst_stride) * es;
    dims.pop_back();
  }
  // An odometer over the dimensions above the rows (3-D and deeper boxes: experts).
  std::vector<int64_t> at(dims.size(), 0);
  for (;;) {
    copy.src_offset = src_base;
    copy.dst_offset = dst_base;
    for (size_t i = 0; i < dims.size(); ++i) {
      copy.src_offset += uint64_t(at[i] * dims[i].src_stride) * es;
      copy.dst_offset += uint64_t(at[i] * dims[i].dst_stride) * es;
    }
    out->push_back(copy);
    size_t i = dims.size();
    while (i > 0 && ++at[i - 1] == dims[i - 1].extent) at[--i] = 0;
    if (i == 0) return;
  }
}

}  // namespace

uint64_t part_copies(const region::Box &part, const Target &target, const std::vector<Source> &sources,
                     std::vector<RowCopy> *copies) {
  uint64_t copied = 0;
  const uint64_t es = target.element_bytes;
  for (uint32_t s = 0; s < sources.size(); ++s) {
    const Source &source = sources[s];
    region::Box common;
    if (region::volume(part) == 0 || !region::intersect(part, source.box, &common)) continue;
    uint64_t src_base = 0, dst_base = 0;
    for (uint32_t d = 0; d < part.ndim; ++d) {
      int64_t in_dst = common.offset[d] - part.offset[d] + (d == target.concat_dim ? target.concat_offset : 0);
      src_base += uint64_t((common.offset[d] - source.box.offset[d]) * source.strides[d]) * es;
      dst_base += uint64_t(in_dst * target.strides[d]) * es;
    }
    box_runs(part.ndim, common.extent, src_base, source.strides, dst_base, target.strides, target.element_bytes, s,
             copies);
    copied += region::volume(common);
  }
  return copied;
}

void pad_fills(const region::Box &part, int64_t pad, const Target &target, std::vector<ZeroFill> *fills) {
  if (pad == 0) return;
  int64_t extent[WB_MAX_DIMS] = {};
  uint64_t dst_base = 0;
  for (uint32_t d = 0; d < part.ndim; ++d) extent[d] = part.extent[d];
  extent[target.concat_dim] = pad;
  dst_base = uint64_t((target.concat_offset + part.extent[target.concat_dim]) * target.strides[target.concat_dim]) *
             target.element_bytes;
  std::vector<RowCopy> runs;
  box_runs(part.ndim, extent, dst_base, target.strides, dst_base, target.strides, target.element_bytes, 0, &runs);
  for (const RowCopy &r : runs) fills->push_back({r.dst_offset, r.row_bytes, r.rows, r.dst_pitch});
}

namespace {

// Whether candidate a is read rather than b, both replicas of one box.
bool preferred(const Candidate &a, const Candidate &b) {
  if (a.on_dest_gpu != b.on_dest_gpu) return a.on_dest_gpu;
  return a.rank < b.rank;
}

}  // namespace

std::vector<uint32_t> choose_sources(const std::vector<Candidate> &candidates) {
  std::vector<uint32_t> chosen;
  for (uint32_t i = 0; i < candidates.size(); ++i) {
    const Candidate &c = candidates[i];
    bool beaten = false;
    for (uint32_t j = 0; c.replicated && !beaten && j < candidates.size(); ++j) {
      const Candidate &o = candidates[j];
      if (j == i || !o.replicated || !region::same(o.box, c.box)) continue;
      // Ties (the same rank holding one box twice) go to the first.
      beaten = preferred(o, c) || (!preferred(c, o) && j < i);
    }
    if (!beaten) chosen.push_back(i);
  }
  return chosen;
}

}  // namespace wb::plan
