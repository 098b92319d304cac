// Conversions: checking a destination's request, its rectangles, and the host's run (see convert.hpp).
#include "convert.hpp"

#include <algorithm>

#include "error.hpp"
#include "region.hpp"
#include "weightbus/weightbus.h"

namespace wb::convert {

namespace {

bool is_fp8(int32_t dtype) { return dtype == WB_DTYPE_F8E4M3 || dtype == WB_DTYPE_F8E5M2; }

bool is_float_source(int32_t dtype) {
  return dtype == WB_DTYPE_BF16 || dtype == WB_DTYPE_F16 || dtype == WB_DTYPE_F32;
}

const char *layout_name(uint32_t layout) {
  static const char *const names[] = {"WB_SCALE_NONE", "WB_SCALE_TENSOR", "WB_SCALE_CHANNEL", "WB_SCALE_BLOCK"};
  return layout < 4 ? names[layout] : "unknown";
}

// The pair and the layout against Conversions' list.
int check_pair(const Request &r) {
  if (r.layout > WB_SCALE_BLOCK) {
    return fail(WB_E_INVAL, "scale_layout %u is not a WB_SCALE_* value", r.layout);
  }
  const char *src = wb_dtype_name(r.src_dtype), *dst = wb_dtype_name(r.dst_dtype);
  if (is_fp8(r.dst_dtype)) {
    if (!is_float_source(r.src_dtype)) {
      return fail(WB_E_DTYPE, "no conversion from %s to %s: FP8 destinations read bf16, f16 or f32", src, dst);
    }
    if (r.layout == WB_SCALE_NONE) {
      return fail(WB_E_DTYPE, "converting %s to %s needs scales: set scale_layout to WB_SCALE_TENSOR, "
                  "WB_SCALE_CHANNEL or WB_SCALE_BLOCK, and scale", src, dst);
    }
    return WB_OK;
  }
  if (r.dst_dtype == WB_DTYPE_BF16 && r.src_dtype == WB_DTYPE_F32) {
    if (r.layout == WB_SCALE_NONE) return WB_OK;
    return fail(WB_E_DTYPE, "f32 to bf16 takes no scales, but scale_layout is %s", layout_name(r.layout));
  }
  if (r.dst_dtype == r.src_dtype || r.dst_dtype == 0) {
    return fail(WB_E_DTYPE, "scale_layout %s asks for scales, which only FP8 destinations have (the tensor "
                "and the destination are %s)", layout_name(r.layout), src);
  }
  return fail(WB_E_DTYPE, "no conversion from %s to %s: conversions are bf16, f16 or f32 to f8e4m3 or f8e5m2 "
              "and f32 to bf16", src, dst);
}

uint64_t ceil_div(uint64_t a, uint64_t b) { return (a + b - 1) / b; }

// How many scales dest has.
uint64_t scale_count(const wb_convert_dest &d) {
  if (d.layout == WB_SCALE_NONE) return 0;
  if (d.layout == WB_SCALE_TENSOR) return 1;
  return ceil_div(d.rows, d.group_rows) * ceil_div(d.cols, d.group_cols);
}

// The elements that a group shares a rectangle with: [r0, r1) x [c0, c1), or empty.
struct Span {
  uint64_t r0, r1, c0, c1;
  bool empty() const { return r0 >= r1 || c0 >= c1; }
};

Span overlap(const wb_convert_rect &rect, uint64_t gr0, uint64_t gr1, uint64_t gc0, uint64_t gc1) {
  return {std::max<uint64_t>(rect.row0, gr0), std::min<uint64_t>(rect.row0 + rect.rows, gr1),
          std::max<uint64_t>(rect.col0, gc0), std::min<uint64_t>(rect.col0 + rect.cols, gc1)};
}

// Calls f(x, r, c) for each element of rect within span, in row-major order.
template <typename F>
void for_each(const wb_convert_dest &d, const wb_convert_rect &rect, const char *source, const Span &s, F f) {
  const uint32_t es = element_size(d.src_dtype);
  for (uint64_t r = s.r0; r < s.r1; ++r) {
    const char *row = source + rect.src_offset + (r - rect.row0) * rect.src_pitch + (s.c0 - rect.col0) * es;
    for (uint64_t c = s.c0; c < s.c1; ++c) f(wb_convert_load(row, 0, d.src_dtype), r, c), row += es;
  }
}

}  // namespace

uint32_t element_size(unsigned int dtype) { return wb_dtype_size(int32_t(dtype)); }

int describe(const Request &r, uint32_t ndim, const int64_t *shape, void *dst, uint64_t dst_bytes,
             wb_convert_dest *out) {
  if (int rc = check_pair(r); rc != WB_OK) return rc;
  uint64_t rows = 1, cols = 1;
  for (uint32_t d = 0; d < ndim; ++d) {
    // Channels are along dimension 0; every other layout keeps the last dimension as the rows' length.
    bool in_rows = r.layout == WB_SCALE_CHANNEL ? d == 0 : d + 1 < ndim;
    (in_rows ? rows : cols) *= uint64_t(shape[d]);
  }
  *out = wb_convert_dest{};
  out->dst = reinterpret_cast<uintptr_t>(dst);
  out->scale = reinterpret_cast<uintptr_t>(r.scale);
  out->rows = rows;
  out->cols = cols;
  out->src_dtype = uint32_t(r.src_dtype);
  out->dst_dtype = uint32_t(r.dst_dtype);
  out->layout = r.layout;
  switch (r.layout) {
    case WB_SCALE_TENSOR:
      out->group_rows = std::max<uint64_t>(rows, 1);
      out->group_cols = std::max<uint64_t>(cols, 1);
      break;
    case WB_SCALE_CHANNEL:
      out->group_rows = 1;
      out->group_cols = std::max<uint64_t>(cols, 1);
      break;
    case WB_SCALE_BLOCK:
      if (ndim != 2) {
        return fail(WB_E_SHAPE, "WB_SCALE_BLOCK needs a 2-D destination, and its shape is %s",
                    region::format_shape(ndim, shape).c_str());
      }
      if ((r.block_rows == 0) != (r.block_cols == 0)) {
        return fail(WB_E_INVAL, "block %u x %u: give both sides, or 0 and 0 for 128 x 128", r.block_rows,
                    r.block_cols);
      }
      out->group_rows = r.block_rows == 0 ? 128 : r.block_rows;
      out->group_cols = r.block_cols == 0 ? 128 : r.block_cols;
      break;
    default:  // no scales: groups of about 16K elements only split the kernel's work
      out->group_cols = std::clamp<uint64_t>(cols, 1, 16384);
      out->group_rows = std::max<uint64_t>(16384 / out->group_cols, 1);
      break;
  }
  const uint64_t needed = rows * cols * element_size(out->dst_dtype);
  if (dst_bytes < needed) {
    return fail(WB_E_SIZE, "%s as %s is %llu bytes, but dst_bytes is %llu",
                region::format_shape(ndim, shape).c_str(), wb_dtype_name(r.dst_dtype), (unsigned long long)needed,
                (unsigned long long)dst_bytes);
  }
  const uint64_t scales = scale_count(*out);
  if (r.layout == WB_SCALE_NONE && r.scale != nullptr) {
    return fail(WB_E_INVAL, "scale is set, but scale_layout is WB_SCALE_NONE");
  }
  if (scales > 0 && r.scale == nullptr) {
    return fail(WB_E_INVAL, "%s needs scale, and it is NULL", layout_name(r.layout));
  }
  if (r.scale_bytes < scales * sizeof(float)) {
    return fail(WB_E_SIZE, "%s of %s has %llu f32 scales (%llu bytes), but scale_bytes is %llu",
                layout_name(r.layout), region::format_shape(ndim, shape).c_str(), (unsigned long long)scales,
                (unsigned long long)(scales * sizeof(float)), (unsigned long long)r.scale_bytes);
  }
  return WB_OK;
}

void rects_of_copy(const plan::RowCopy &copy, const wb_convert_dest &dest, uint32_t source,
                   std::vector<wb_convert_rect> *rects) {
  const uint64_t cols = dest.cols, len = copy.row_bytes, es = element_size(dest.src_dtype);
  if (cols == 0 || len == 0) return;
  auto add = [&](uint64_t dst_element, uint64_t src_element, uint64_t rows, uint64_t width, uint64_t src_pitch) {
    wb_convert_rect r{};
    r.src_offset = src_element * es;
    r.src_pitch = src_pitch * es;
    r.row0 = dst_element / cols;
    r.col0 = dst_element % cols;
    r.rows = rows;
    r.cols = width;
    r.source = source;
    rects->push_back(r);
  };
  const uint64_t col0 = copy.dst_offset % cols;
  // Rows of the copy that lie within rows of the view, one under the other: one rectangle.
  if (col0 + len <= cols && (copy.rows == 1 || copy.dst_pitch == cols)) {
    add(copy.dst_offset, copy.src_offset, copy.rows, len, copy.rows == 1 ? len : copy.src_pitch);
    return;
  }
  // Whole rows of the view, from contiguous source runs: a rectangle per run, or one if the runs follow on.
  if (col0 == 0 && len % cols == 0) {
    if (copy.rows == 1 || (copy.dst_pitch == len && copy.src_pitch == len)) {
      add(copy.dst_offset, copy.src_offset, copy.rows * (len / cols), cols, cols);
      return;
    }
    for (uint64_t i = 0; i < copy.rows; ++i) {
      add(copy.dst_offset + i * copy.dst_pitch, copy.src_offset + i * copy.src_pitch, len / cols, cols, cols);
    }
    return;
  }
  // Anything else: each run cut where the view's rows end (a head, whole rows, a tail).
  for (uint64_t i = 0; i < copy.rows; ++i) {
    uint64_t dst = copy.dst_offset + i * copy.dst_pitch, src = copy.src_offset + i * copy.src_pitch, left = len;
    while (left > 0) {
      const uint64_t c = dst % cols;
      uint64_t rows = 1, width = std::min(left, cols - c);
      if (c == 0 && left >= cols) rows = left / cols, width = cols;
      add(dst, src, rows, width, cols);
      dst += rows * width, src += rows * width, left -= rows * width;
    }
  }
}

void run_host(const wb_convert_dest &d, const wb_convert_rect *rects, const char *const *sources) {
  const wb_convert_rect *first = rects + d.first_rect, *last = first + d.rect_count;
  char *dst = reinterpret_cast<char *>(uintptr_t(d.dst));
  if (d.layout == WB_SCALE_NONE) {
    auto *out = reinterpret_cast<uint16_t *>(dst);
    for (const wb_convert_rect *r = first; r != last; ++r) {
      for_each(d, *r, sources[r->source], overlap(*r, 0, d.rows, 0, d.cols),
               [&](float x, uint64_t row, uint64_t col) { out[row * d.cols + col] = uint16_t(wb_convert_to_bf16(x)); });
    }
    return;
  }
  auto *scales = reinterpret_cast<float *>(uintptr_t(d.scale));
  auto *out = reinterpret_cast<uint8_t *>(dst);
  const uint64_t group_cols = ceil_div(d.cols, d.group_cols);
  if (d.rows == 0 || d.cols == 0) {
    if (d.layout == WB_SCALE_TENSOR) scales[0] = wb_convert_scale(0, d.dst_dtype);  // an empty tensor's: 1.0
    return;
  }
  for (uint64_t gr0 = 0; gr0 < d.rows; gr0 += d.group_rows) {
    for (uint64_t gc0 = 0; gc0 < d.cols; gc0 += d.group_cols) {
      const uint64_t gr1 = std::min(gr0 + d.group_rows, d.rows), gc1 = std::min(gc0 + d.group_cols, d.cols);
      unsigned int amax = 0;
      for (const wb_convert_rect *r = first; r != last; ++r) {
        Span s = overlap(*r, gr0, gr1, gc0, gc1);
        if (!s.empty()) for_each(d, *r, sources[r->source], s, [&](float x, uint64_t, uint64_t) {
            amax = std::max(amax, wb_convert_abs_bits(x));
          });
      }
      const float scale = wb_convert_scale(amax, d.dst_dtype);
      scales[(gr0 / d.group_rows) * group_cols + gc0 / d.group_cols] = scale;
      for (const wb_convert_rect *r = first; r != last; ++r) {
        Span s = overlap(*r, gr0, gr1, gc0, gc1);
        if (!s.empty()) for_each(d, *r, sources[r->source], s, [&](float x, uint64_t row, uint64_t col) {
            out[row * d.cols + col] = uint8_t(wb_convert_quantize(x, scale, d.dst_dtype));
          });
      }
    }
  }
}

}  // namespace wb::convert
