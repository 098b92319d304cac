#include "region.hpp"

#include <algorithm>
#include <cstdio>

namespace wb::region {

uint64_t volume(const Box &box) {
  uint64_t n = 1;
  for (uint32_t d = 0; d < box.ndim; ++d) n *= uint64_t(box.extent[d]);
  return n;
}

bool inside(const Box &box, const int64_t *shape) {
  for (uint32_t d = 0; d < box.ndim; ++d) {
    if (box.offset[d] < 0 || box.extent[d] < 0 || shape[d] < 0) return false;
    if (box.offset[d] > shape[d] || box.extent[d] > shape[d] - box.offset[d]) return false;
  }
  return true;
}

bool intersect(const Box &a, const Box &b, Box *out) {
  Box r;
  r.ndim = a.ndim;
  for (uint32_t d = 0; d < a.ndim; ++d) {
    int64_t lo = std::max(a.offset[d], b.offset[d]);
    int64_t hi = std::min(a.offset[d] + a.extent[d], b.offset[d] + b.extent[d]);
    if (hi <= lo) return false;
    r.offset[d] = lo;
    r.extent[d] = hi - lo;
  }
  *out = r;
  return true;
}

bool same(const Box &a, const Box &b) {
  if (a.ndim != b.ndim) return false;
  for (uint32_t d = 0; d < a.ndim; ++d) {
    if (a.offset[d] != b.offset[d] || a.extent[d] != b.extent[d]) return false;
  }
  return true;
}

namespace {

// A 128-bit integer in decimal: a refused box's end (offset + extent) may lie past int64's range.
std::string decimal(__int128 v) {
  if (v == 0) return "0";
  bool negative = v < 0;
  unsigned __int128 u = negative ? -(unsigned __int128)v : (unsigned __int128)v;
  std::string digits;
  for (; u != 0; u /= 10) digits.insert(digits.begin(), char('0' + int(u % 10)));
  return negative ? "-" + digits : digits;
}

}  // namespace

std::string format(const Box &box) {
  std::string s = "[";
  for (uint32_t d = 0; d < box.ndim; ++d) {
    if (d > 0) s += ", ";
    s += decimal(box.offset[d]) + ":" + decimal(__int128{box.offset[d]} + box.extent[d]);
  }
  return s + "]";
}

std::string format_shape(uint32_t ndim, const int64_t *shape) {
  std::string s = "[";
  char part[32];
  for (uint32_t d = 0; d < ndim; ++d) {
    snprintf(part, sizeof(part), "%s%lld", d == 0 ? "" : ", ", (long long)shape[d]);
    s += part;
  }
  return s + "]";
}

Box whole(uint32_t ndim, const int64_t *shape) {
  Box b;
  b.ndim = ndim;
  for (uint32_t d = 0; d < ndim; ++d) b.extent[d] = shape[d];
  return b;
}

namespace {

bool covered(const Box &cell, const std::vector<Box> &boxes) {
  Box common;
  for (const Box &b : boxes) {
    // Cells are cut at every box edge: a cell meeting a box lies inside it.
    if (volume(b) != 0 && intersect(cell, b, &common) && same(common, cell)) return true;
  }
  return false;
}

bool meets_any(const Box &region, const std::vector<Box> &boxes) {
  Box common;
  for (const Box &b : boxes) {
    if (volume(b) != 0 && intersect(region, b, &common)) return true;
  }
  return false;
}

}  // namespace

bool first_gap(uint32_t ndim, const int64_t *shape, const std::vector<Box> &boxes, Box *gap) {
  Box all = whole(ndim, shape);
  if (volume(all) == 0) return false;  // nothing to cover
  std::vector<std::vector<int64_t>> cuts(ndim);
  for (uint32_t d = 0; d < ndim; ++d) {
    cuts[d] = {0, shape[d]};
    for (const Box &b : boxes) {
      if (volume(b) == 0) continue;
      cuts[d].push_back(b.offset[d]);
      cuts[d].push_back(b.offset[d] + b.extent[d]);
    }
    std::sort(cuts[d].begin(), cuts[d].end());
    cuts[d].erase(std::unique(cuts[d].begin(), cuts[d].end()), cuts[d].end());
  }
  // Walk the cells in row-major order: an odometer over each dimension's intervals.
  std::vector<size_t> at(ndim, 0);
  for (;;) {
    Box cell;
    cell.ndim = ndim;
    for (uint32_t d = 0; d < ndim; ++d) {
      cell.offset[d] = cuts[d][at[d]];
      cell.extent[d] = cuts[d][at[d] + 1] - cuts[d][at[d]];
    }
    if (!covered(cell, boxes)) {
      // Grow it, last dimension first, interval by interval while the grown part meets no box.
      for (uint32_t d = ndim; d-- > 0;) {
        for (size_t i = at[d] + 1; i + 1 < cuts[d].size(); ++i) {
          Box slab = cell;
          slab.offset[d] = cuts[d][i];
          slab.extent[d] = cuts[d][i + 1] - cuts[d][i];
          if (meets_any(slab, boxes)) break;
          cell.extent[d] = cuts[d][i + 1] - cell.offset[d];
        }
      }
      *gap = cell;
      return true;
    }
    uint32_t d = ndim;
    while (d > 0 && ++at[d - 1] + 1 == cuts[d - 1].size()) at[--d] = 0;
    if (d == 0) return false;
  }
}

}  // namespace wb::region
