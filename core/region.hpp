// Boxes of a tensor: the region math of sharded topics, shared by the broker (shards that overlap or leave a
// gap, checked when registered and sealed) and the library (a reader's plan: which part of which shard goes
// where). A box is per dimension an offset and an extent (half-open [offset, offset + extent)), as numpy
// slices are written; a scalar (ndim 0) is one element.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "weightbus/weightbus.h"

namespace wb::region {

struct Box {
  uint32_t ndim = 0;
  int64_t offset[WB_MAX_DIMS] = {};
  int64_t extent[WB_MAX_DIMS] = {};
};

// Elements in the box: 0 when an extent is 0 (an empty shard), 1 for a scalar. Extents must be >= 0.
uint64_t volume(const Box &box);

// Whether box lies in a tensor of `shape` (box.ndim dimensions): offsets >= 0, extents >= 0, ends within.
// Written without overflow for any int64 values.
bool inside(const Box &box, const int64_t *shape);

// The common part of a and b (the same ndim), into *out; false when it is empty.
bool intersect(const Box &a, const Box &b, Box *out);

bool same(const Box &a, const Box &b);

// "[0:4096, 2048:4096]"; a scalar is "[]".
std::string format(const Box &box);
// "[4096, 12288]".
std::string format_shape(uint32_t ndim, const int64_t *shape);

// The whole tensor of `shape` as a box.
Box whole(uint32_t ndim, const int64_t *shape);

// Whether boxes (each inside shape; empty ones ignored) leave part of a tensor of `shape` uncovered; if so,
// *gap is the first uncovered cell in row-major order of the grid cut at every box's edges, grown along each
// dimension (last first) while it stays uncovered, so that a message names one readable region. The grid has
// at most 2 * boxes.size() + 2 cuts per dimension; only dimensions the boxes cut add cells.
bool first_gap(uint32_t ndim, const int64_t *shape, const std::vector<Box> &boxes, Box *gap);

}  // namespace wb::region
