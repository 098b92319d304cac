// Conversions (weightbus.h, "Conversions"): what copy-into and plans share of them. A destination that asks for
// another dtype than its source's is checked here, described as a wb_convert_dest (cuda/convert_params.h) of its
// 2-D view, and its elements are mapped from their sources as rectangles; the host runs the arithmetic here, a
// GPU in the conversion kernel (cuda/convert_run.cpp), both with convert_params.h's functions.
#pragma once

#include <cstdint>
#include <vector>

#include "cuda/convert_params.h"
#include "plan_math.hpp"

namespace wb::convert {

// What a destination asks for: its dtype and scales, as the caller gave them.
struct Request {
  int32_t src_dtype = 0;
  int32_t dst_dtype = 0;
  uint32_t layout = 0;  // WB_SCALE_*
  uint32_t block_rows = 0, block_cols = 0;
  void *scale = nullptr;
  uint64_t scale_bytes = 0;
};

// Whether the request converts: a dtype other than the source's, or scales asked for (which check() refuses
// unless the dtype is FP8).
inline bool converts(const Request &r) { return (r.dst_dtype != 0 && r.dst_dtype != r.src_dtype) || r.layout != 0; }

// Checks a converting request against the destination's shape and fills *out (dst, scale, the 2-D view, the
// groups, the dtypes; not the rectangles). Its messages say what is wrong; the caller prefixes which destination
// (e.g. "targets[3] ('w'): "), formatted only then: copy-into describes hundreds of targets on every call.
// Errors: WB_E_DTYPE (a pair or layout that Conversions does not list), WB_E_SHAPE (WB_SCALE_BLOCK on a
// destination that is not 2-D), WB_E_INVAL (an unknown layout, a block with one side 0, scale NULL where
// scales are asked for, or given where not), WB_E_SIZE (dst_bytes below the converted bytes, scale_bytes below
// the scales').
int describe(const Request &request, uint32_t ndim, const int64_t *shape, void *dst, uint64_t dst_bytes,
             wb_convert_dest *out);

// The rectangles of dest's view that a plan's row copy (in elements: offsets, row length and pitches counted in
// elements, as plan::part_copies gives them with element_bytes 1) fills, appended to *rects with offsets and
// pitches in the source's bytes. `source` is the index into the run's sources.
void rects_of_copy(const plan::RowCopy &copy, const wb_convert_dest &dest, uint32_t source,
                   std::vector<wb_convert_rect> *rects);

// The size in bytes of an element of a dtype that conversions read or write.
uint32_t element_size(unsigned int dtype);

// Converts dest on the host: every group's scale, then its elements, from rects (dest.first_rect and
// rect_count index them) whose sources are the host addresses in sources.
void run_host(const wb_convert_dest &dest, const wb_convert_rect *rects, const char *const *sources);

}  // namespace wb::convert
