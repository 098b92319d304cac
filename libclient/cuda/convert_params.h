/* Conversions (weightbus.h, "Conversions"): the descriptors of a conversion and the arithmetic of one element,
 * one definition for the host (../convert.cpp) and for the conversion kernel (convert_kernel.cu), so that
 * both write the same bits. Plain C without includes, as copy_kernel_params.h, so that nvcc compiles the kernel
 * with no header but these. */
#ifndef WEIGHTBUS_CONVERT_PARAMS_H
#define WEIGHTBUS_CONVERT_PARAMS_H

#ifdef __CUDACC__
#define WB_CONVERT_FN static __host__ __device__ __forceinline__
#else
#define WB_CONVERT_FN static inline
#endif

/* The dtype codes of weightbus.h that conversions read or write (the header's enum is not included here). */
#define WB_CONVERT_BF16 8u
#define WB_CONVERT_F16 7u
#define WB_CONVERT_F32 9u
#define WB_CONVERT_E4M3 11u
#define WB_CONVERT_E5M2 12u

/* Scale layouts: weightbus.h's WB_SCALE_* values. */
#define WB_CONVERT_SCALE_NONE 0u
#define WB_CONVERT_SCALE_TENSOR 1u
#define WB_CONVERT_SCALE_CHANNEL 2u
#define WB_CONVERT_SCALE_BLOCK 3u

/* One rectangle of a destination's 2-D view [rows, cols] and where its elements come from: element (r, c) of
 * the view, for row0 <= r < row0 + rows and col0 <= c < col0 + cols, is source `source`'s element at byte
 * src_offset + (r - row0) * src_pitch + (c - col0) * (the source dtype's size). A destination's rectangles do not
 * overlap; what they leave uncovered is zero (a plan's padding, filled apart) and counts as 0 in amax. */
typedef struct wb_convert_rect {
  unsigned long long src_offset;
  unsigned long long src_pitch;
  unsigned long long row0, col0;
  unsigned long long rows, cols;
  unsigned int source;
  unsigned int unused;
} wb_convert_rect;

/* One converting destination: its bytes at dst, row-major [rows, cols] of dst_dtype; its scales (f32) at scale,
 * one per group of group_rows x group_cols elements (the groups at the edges partial), row-major over the
 * ceil(rows / group_rows) x ceil(cols / group_cols) groups. WB_CONVERT_SCALE_TENSOR: one group of the whole view;
 * CHANNEL: 1 x cols; BLOCK: the block; NONE: no scales (scale 0), groups only split the work. Its rectangles are
 * rects[first_rect .. first_rect + rect_count). */
typedef struct wb_convert_dest {
  unsigned long long dst;
  unsigned long long scale;
  unsigned long long rows, cols;
  unsigned long long group_rows, group_cols;
  unsigned int src_dtype, dst_dtype;
  unsigned int layout;
  unsigned int first_rect, rect_count;
  unsigned int unused;
} wb_convert_dest;

/* ---- one element ------------------------------------------------------------------------------------------ */

WB_CONVERT_FN float wb_convert_bits_float(unsigned int bits) {
  union {
    unsigned int u;
    float f;
  } v;
  v.u = bits;
  return v.f;
}

WB_CONVERT_FN unsigned int wb_convert_float_bits(float f) {
  union {
    unsigned int u;
    float f;
  } v;
  v.f = f;
  return v.u;
}

/* An IEEE half's bits widened to f32 (exact). */
WB_CONVERT_FN float wb_convert_from_f16(unsigned int h) {
  const unsigned int sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  if (exp == 0x1fu) return wb_convert_bits_float(sign | 0x7f800000u | (mant << 13)); /* inf, NaN */
  if (exp != 0) return wb_convert_bits_float(sign | ((exp + 112u) << 23) | (mant << 13));
  /* zero and subnormals: mant * 2^-24, exact in f32 */
  const float magnitude = (float)mant * 5.9604644775390625e-8f;
  return wb_convert_bits_float(sign | wb_convert_float_bits(magnitude));
}

WB_CONVERT_FN float wb_convert_from_bf16(unsigned int b) { return wb_convert_bits_float(b << 16); }

/* Element i (of the source dtype) at p, widened to f32. */
WB_CONVERT_FN float wb_convert_load(const void *p, unsigned long long i, unsigned int dtype) {
  if (dtype == WB_CONVERT_F32) return ((const float *)p)[i];
  const unsigned int bits = ((const unsigned short *)p)[i];
  return dtype == WB_CONVERT_BF16 ? wb_convert_from_bf16(bits) : wb_convert_from_f16(bits);
}

/* The largest finite value of an FP8 type (M in weightbus.h). */
WB_CONVERT_FN float wb_convert_fp8_max(unsigned int dtype) { return dtype == WB_CONVERT_E4M3 ? 448.0f : 57344.0f; }

/* |x|, NaN-propagating max: comparing the magnitudes' bits as unsigned integers orders finite values, then
 * infinity, then every NaN above them. */
WB_CONVERT_FN unsigned int wb_convert_abs_bits(float x) { return wb_convert_float_bits(x) & 0x7fffffffu; }

/* The scale of a group whose amax has these bits (weightbus.h): amax / M, 1.0 when amax is 0, and for NaN the
 * one NaN 0x7FFFFFFF (what a GPU's division returns; a CPU's would keep the input's payload). */
WB_CONVERT_FN float wb_convert_scale(unsigned int amax_bits, unsigned int dtype) {
  if (amax_bits == 0) return 1.0f;
  if (amax_bits > 0x7f800000u) return wb_convert_bits_float(0x7fffffffu);
  return wb_convert_bits_float(amax_bits) / wb_convert_fp8_max(dtype);
}

/* f32 -> e4m3fn or e5m2 of a value already clamped to [-M, M] or NaN: round to nearest, ties to even, subnormals
 * kept; NaN -> 0x7F. The rounding adds half an ulp of the target (less one, plus the kept bit's parity) below
 * the bits that are cut; values below the smallest normal are rounded by adding a power of two whose f32 ulp is
 * the target's subnormal step, which leaves the count of steps in the low bits. */
WB_CONVERT_FN unsigned int wb_convert_to_fp8(float x, unsigned int dtype) {
  unsigned int bits = wb_convert_float_bits(x);
  const unsigned int sign = (bits >> 24) & 0x80u;
  bits &= 0x7fffffffu;
  if (bits > 0x7f800000u) return 0x7fu;
  /* e4m3: bias 7, 3 mantissa bits, smallest normal 2^-6; e5m2: bias 15, 2 bits, 2^-14 */
  const unsigned int mant_bits = dtype == WB_CONVERT_E4M3 ? 3u : 2u;
  const unsigned int bias = dtype == WB_CONVERT_E4M3 ? 7u : 15u;
  const unsigned int min_normal_exp = 127u + 1u - bias; /* f32 exponent field of the smallest normal */
  const unsigned int shift = 23u - mant_bits;
  unsigned int out;
  if (bits < (min_normal_exp << 23)) {
    /* 2^(min_normal_exp - 127 + 23 - mant_bits ... ): the power of two whose f32 ulp is the subnormal step */
    const unsigned int magic = (min_normal_exp + shift) << 23;
    out = wb_convert_float_bits(wb_convert_bits_float(bits) + wb_convert_bits_float(magic)) - magic;
  } else {
    const unsigned int odd = (bits >> shift) & 1u;
    bits += ((unsigned int)(bias - 127u) << 23) + (1u << (shift - 1u)) - 1u + odd;
    out = bits >> shift;
  }
  return out | sign;
}

/* f32 -> bf16: round to nearest, ties to even; NaN -> 0x7FFF. */
WB_CONVERT_FN unsigned int wb_convert_to_bf16(float x) {
  const unsigned int bits = wb_convert_float_bits(x);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return 0x7fffu;
  return (bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16;
}

/* One element of an FP8 destination with its group's scale: clamp(x / scale, -M, M), rounded. A NaN quotient
 * stays NaN (the comparisons below are false for it). */
WB_CONVERT_FN unsigned int wb_convert_quantize(float x, float scale, unsigned int dtype) {
  const float m = wb_convert_fp8_max(dtype);
  float q = x / scale;
  if (q > m) q = m;
  if (q < -m) q = -m;
  return wb_convert_to_fp8(q, dtype);
}

/* ---- the GPU's quotient ------------------------------------------------------------------------------------
 * An IEEE division costs a GPU a dozen instructions and a branch per element, more than the rest of the
 * conversion. The kernels divide with the group's reciprocal instead: q0 = x * r, the remainder x - q0 * scale
 * (exact in one fused multiply-add), and q0 corrected by the remainder times r, which is x / scale correctly
 * rounded when r is 1 / scale correctly rounded and nothing underflows (Markstein's theorem). The remainder is
 * taken negated, q0 * scale - x, so that a zero x keeps its sign through the correction (x - q0 * scale would
 * make -0 into +0); negating operands costs a GPU nothing. Underflow is kept away by using this only for scales
 * of at least 2^-60 (a group's amax of at least ~2^-51, far below any weight): a remainder that matters (the
 * quotient at least 2^-18, below which every FP8 rounds to zero) is then a multiple of at least 2^-125, a normal
 * number, even where a GPU flushes subnormals. Groups with other scales (zero or tiny amax, NaN, infinity)
 * divide. tests/conversions checks it against the division for every bf16 and f16 value and every group
 * amax, both FP8 types: the same FP8 bits everywhere. */
#define WB_CONVERT_RECIPROCAL_MIN 8.67361737988403547e-19f /* 2^-60 */

/* Whether the kernels may divide a group with this scale through its reciprocal. */
WB_CONVERT_FN int wb_convert_reciprocal_fits(float scale) {
  return scale >= WB_CONVERT_RECIPROCAL_MIN && scale <= 3.40282346638528859e38f;
}

#ifdef __CUDA_ARCH__
#define WB_CONVERT_MUL(a, b) __fmul_rn(a, b)
#define WB_CONVERT_FMA(a, b, c) __fmaf_rn(a, b, c)
#else
#define WB_CONVERT_MUL(a, b) ((a) * (b))
#define WB_CONVERT_FMA(a, b, c) __builtin_fmaf(a, b, c)
#endif

/* x / scale, correctly rounded, for r = 1 / scale with wb_convert_reciprocal_fits(scale) (see above). */
WB_CONVERT_FN float wb_convert_quotient(float x, float scale, float r) {
  const float q0 = WB_CONVERT_MUL(x, r);
  return WB_CONVERT_FMA(-WB_CONVERT_FMA(q0, scale, -x), r, q0);
}

/* ---- the conversion kernels' launches (convert_kernel.cu, filled by convert_run.cpp) ---------------------- */

/* 256 threads, 4 vectors each: a tile is 1,024 vectors of 16 bytes, half a 128 x 128 block of bf16. 512
 * threads (the whole block in registers) ran slower on an H200: at ~95 registers a thread, one block per
 * multiprocessor, with nothing to overlap its passes and its barrier. */
#define WB_CONVERT_THREADS 256u
#define WB_CONVERT_UNROLL 4u
#define WB_CONVERT_TILE (WB_CONVERT_THREADS * WB_CONVERT_UNROLL)

/* Blocks a multiprocessor should hold at once (the kernels' __launch_bounds__: at most 80 registers a thread),
 * and the direct path's vectors a thread (convert_kernel.cu: a 128 x 128 bf16 block in one chunk, read once).
 * Measured on an H200 (docs/benchmarks.md), since whole chunks step without a cursor: 128 x 128 blocks 0.73-0.77
 * of the copy bandwidth against 0.66-0.75 with 4 and 4 (the block in two chunks, the first read again), 0.68
 * with 2 and 8, 0.61 with 512 threads, 2 and 4; per-channel 0.58 against 0.53, per-tensor 0.45 against 0.48;
 * 4 and 8 spill much (0.44). With the block staged in shared memory (convert_staged): 3 blocks 0.77-0.83 /
 * 0.83-0.84 (copy-into / plan), 4 (64 registers) 0.69 / 0.72, 5 (48) 0.54 / 0.56: the other paths spill. */
#define WB_CONVERT_MIN_BLOCKS 3
#define WB_CONVERT_DIRECT_UNROLL 8

/* Elements of a WB_CONVERT_SCALE_TENSOR destination per block: 32 KiB of bf16, as a 128 x 128 group. */
#define WB_CONVERT_PIECE 16384u

/* What a launch does (see above). */
#define WB_CONVERT_PHASE_ZERO 0u
#define WB_CONVERT_PHASE_MAIN 1u
#define WB_CONVERT_PHASE_QUANT 2u
#define WB_CONVERT_PHASE_SCALE 3u

/* Blocks first_block, first_block + 1, ... of the launch convert the destination's pieces first_piece,
 * first_piece + 1, ..., up to the next job's first_block. ZERO and SCALE launches run a thread per job instead
 * (first_block and first_piece unused). */
typedef struct wb_convert_job {
  unsigned long long first_piece;
  unsigned int first_block;
  unsigned int dest; /* index into the launch's destinations */
} wb_convert_job;

/* A plan's launches: destinations, rectangles and jobs stay in device memory from run to run, as the plan
 * kernel's copies do; the launch carries the addresses of this version's sources, which fill most of the
 * 32,764 bytes of parameters that CUDA 12.1+ drivers allow. */
#define WB_CONVERT_MAX_SOURCES 4000u

typedef struct wb_convert_plan_params {
  unsigned long long dests; /* device addresses: the launch's destinations, their rectangles (first_rect and */
  unsigned long long rects; /* source count from these), and `count` jobs */
  unsigned long long jobs;
  unsigned int count; /* >= 1 */
  unsigned int phase;
  unsigned long long sources[WB_CONVERT_MAX_SOURCES];
} wb_convert_plan_params;

/* Copy-into's launches, whose descriptors change with every call: all of them in the parameters, for
 * WB_CONVERT_BATCH destinations with a rectangle and a source each (8 + 215 * 152 = 32,688 bytes). */
#define WB_CONVERT_BATCH 215u

typedef struct wb_convert_batch_params {
  unsigned int count; /* jobs, >= 1 */
  unsigned int phase;
  wb_convert_job jobs[WB_CONVERT_BATCH];
  wb_convert_dest dests[WB_CONVERT_BATCH];
  wb_convert_rect rects[WB_CONVERT_BATCH];
  unsigned long long sources[WB_CONVERT_BATCH];
} wb_convert_batch_params;

/* WB_CONVERT_SCALE_CHANNEL: the rows (channels, a scale each) one block converts, so that a piece of a narrow
 * destination is about one chunk of the direct path (WB_CONVERT_THREADS x WB_CONVERT_DIRECT_UNROLL vectors of 16
 * bytes of the source): a block per 4,096-wide bf16 row left most of its threads idle. At most
 * WB_CONVERT_CHANNEL_ROWS. */
#define WB_CONVERT_CHANNEL_ROWS 64u

WB_CONVERT_FN unsigned long long wb_convert_channel_rows(const wb_convert_dest *d) {
  const unsigned long long size = d->src_dtype == WB_CONVERT_F32 ? 4u : 2u;
  const unsigned long long chunk = WB_CONVERT_THREADS * WB_CONVERT_DIRECT_UNROLL * 16u / size; /* elements */
  const unsigned long long rows = d->cols == 0 ? 1 : chunk / d->cols;
  return rows == 0 ? 1 : rows > WB_CONVERT_CHANNEL_ROWS ? WB_CONVERT_CHANNEL_ROWS : rows;
}

/* The piece of a destination that one block converts: its group; for WB_CONVERT_SCALE_CHANNEL, channels
 * (wb_convert_channel_rows); for WB_CONVERT_SCALE_TENSOR about WB_CONVERT_PIECE elements (whole rows where a row
 * has at most that many). */
WB_CONVERT_FN void wb_convert_piece_shape(const wb_convert_dest *d, unsigned long long *rows,
                                          unsigned long long *cols) {
  if (d->layout == WB_CONVERT_SCALE_CHANNEL) {
    *rows = wb_convert_channel_rows(d);
    *cols = d->group_cols;
    return;
  }
  if (d->layout != WB_CONVERT_SCALE_TENSOR) {
    *rows = d->group_rows;
    *cols = d->group_cols;
    return;
  }
  *cols = d->cols == 0 ? 1 : d->cols < WB_CONVERT_PIECE ? d->cols : WB_CONVERT_PIECE;
  *rows = WB_CONVERT_PIECE / *cols;
}

/* The pieces of a destination, row-major over ceil(rows / piece rows) x ceil(cols / piece cols). */
WB_CONVERT_FN unsigned long long wb_convert_pieces(const wb_convert_dest *d) {
  unsigned long long rows, cols;
  wb_convert_piece_shape(d, &rows, &cols);
  if (d->rows == 0 || d->cols == 0) return 0;
  return ((d->rows + rows - 1) / rows) * ((d->cols + cols - 1) / cols);
}

/* The groups of a destination (its scales, one a group), row-major over ceil(rows / group rows) x
 * ceil(cols / group cols); 0 for an empty one. */
WB_CONVERT_FN unsigned long long wb_convert_groups(const wb_convert_dest *d) {
  if (d->rows == 0 || d->cols == 0) return 0;
  return ((d->rows + d->group_rows - 1) / d->group_rows) * ((d->cols + d->group_cols - 1) / d->group_cols);
}

#endif
