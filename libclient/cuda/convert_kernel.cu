/* The conversion kernels (weightbus.h, "Conversions"): destinations described by convert_params.h, converted on
 * the GPU with its per-element functions, so that they write the host's bits. A module of its own, built twice
 * (libclient/CMakeLists.txt: for every GPU, and with the FP8 instruction) as fat binaries, loaded in a context on
 * the first conversion there, so that copy-into and plans that convert nothing never load it (the driver takes
 * about 8 s to compile its PTX where the fat binary has no code for the GPU); its parameters are in
 * convert_params.h, which convert_run.cpp fills.
 *
 * Work split: a block converts one piece of one destination: a group (the elements that share a scale;
 * WB_CONVERT_SCALE_NONE's groups only split the work), or for WB_CONVERT_SCALE_TENSOR a piece of about
 * WB_CONVERT_PIECE elements. A launch's jobs each give a destination's first piece and the block that converts
 * it (a prefix sum, searched as copy_kernel.cu searches first_chunk), so one launch covers any mix of sizes.
 *
 * A group (WB_CONVERT_SCALE_BLOCK, _CHANNEL) is read from memory once: pass 1 loads the group tile by tile
 * (each thread WB_CONVERT_UNROLL 16-byte vectors per tile, all in flight), finding the block's amax; pass 2 goes
 * over the tiles in reverse, converting and storing. The last tile loaded is still in registers, and the
 * earlier ones are read again from the L2 cache, where pass 1 left them; pass 2's reads and all stores are
 * marked streaming (evict first), so that they do not push the group's other tiles out of the cache.
 *
 * Most pieces take the direct path instead (below): a piece inside one rectangle with aligned rows is loaded
 * with simpler addressing, its amax found, and each element divided through the group's reciprocal
 * (convert_params.h) and rounded by the FP8 conversion instruction where the GPU has one. The commonest piece, a
 * 128 x 128 block of bf16 or f16 into FP8, is staged in shared memory by asynchronous copies (convert_staged)
 * rather than loaded into registers. Speed on an H200 (docs/benchmarks.md): a 16 GB bf16 model to e4m3 with
 * 128 x 128 scales at 0.77-0.84 of one device copy's bytes per second (0.75-0.77 with the block in registers).
 *
 * WB_CONVERT_SCALE_TENSOR needs the whole destination's amax before its first element is written, so it takes
 * four launches, in stream order: ZERO sets the destination's scale word to 0; MAIN's blocks (beside the other
 * layouts' groups) each find their piece's amax and atomicMax its bits into the word (the bits of |x| order as
 * unsigned integers, NaN above all); QUANT's blocks read the bits, compute the scale themselves with
 * wb_convert_scale and convert their pieces; SCALE then writes the scale itself (f32) over the bits. */
#include "convert_params.h"

namespace {
namespace convert {

constexpr unsigned kThreads = WB_CONVERT_THREADS, kUnroll = WB_CONVERT_UNROLL, kTile = WB_CONVERT_TILE;

// The bytes of an element of a dtype that conversions read or write (kFp8: 1).
__device__ __forceinline__ constexpr unsigned size_of(unsigned dtype) {
  return dtype == WB_CONVERT_F32 ? 4u : dtype == WB_CONVERT_BF16 || dtype == WB_CONVERT_F16 ? 2u : 1u;
}

// The block's piece of its destination: rows [r0, r1) x cols [c0, c1), and the index of its (first) group's
// scale.
struct Piece {
  unsigned long long r0, r1, c0, c1, index;
};

// Where the descriptors are: in device memory (a plan's destinations, rectangles and jobs) or in the
// parameters (copy-into's, and every launch's sources), which __grid_constant__ lets the kernels address in
// place, so that one body (run, below) serves both kernels.
struct Table {
  const wb_convert_job *jobs;
  const wb_convert_dest *dests;
  const wb_convert_rect *rects;
  const unsigned long long *sources;
  __device__ __forceinline__ const char *source(unsigned i) const { return reinterpret_cast<const char *>(sources[i]); }
};

// The destination dtype of a template that converts to either FP8 type: which one is the destination's
// dst_dtype, read at run time (it only changes constants), so that each source dtype has one FP8 body.
constexpr unsigned kFp8 = 0;

// A rectangle's share of the piece: `rows` rows of n elements, the first at src (source) and dst (destination).
// A row is cut into `slots` vector slots, each the 16 aligned bytes of the source that hold some of its
// elements (the same count for every row: where rows are not all aligned alike, the most any row needs). Its
// slots, counted row by row, are fewer than 2^31 (convert_run.cpp refuses larger pieces), so 32 bits count them.
struct Span {
  const char *src;
  char *dst;
  unsigned long long src_pitch, dst_pitch;
  unsigned rows, n, slots, tiles;
  unsigned step_rows, step_slots;  // kThreads slots on: whole rows, and slots beyond them
};

template <unsigned SRC, unsigned DST>
__device__ __forceinline__ bool make_span(const wb_convert_dest &d, const wb_convert_rect &rect, const char *source,
                                          const Piece &p, Span *s) {
  constexpr unsigned es = size_of(SRC), ds = size_of(DST), v = 16 / es;
  const unsigned long long r0 = max(rect.row0, p.r0), r1 = min(rect.row0 + rect.rows, p.r1);
  const unsigned long long c0 = max(rect.col0, p.c0), c1 = min(rect.col0 + rect.cols, p.c1);
  if (r0 >= r1 || c0 >= c1) return false;
  s->src = source + rect.src_offset + (r0 - rect.row0) * rect.src_pitch + (c0 - rect.col0) * es;
  s->dst = reinterpret_cast<char *>(d.dst) + (r0 * d.cols + c0) * ds;
  s->src_pitch = rect.src_pitch;
  s->dst_pitch = d.cols * ds;
  s->rows = unsigned(r1 - r0);
  s->n = unsigned(c1 - c0);
  // Elements before the first row's first aligned vector; every row's, where the pitch keeps the alignment.
  const bool aligned_alike = s->rows == 1 || rect.src_pitch % 16 == 0;
  const unsigned head = aligned_alike ? unsigned(reinterpret_cast<unsigned long long>(s->src) % 16) / es : v - 1;
  s->slots = (head + s->n + v - 1) / v;
  s->tiles = (s->rows * s->slots + kTile - 1) / kTile;
  s->step_rows = kThreads / s->slots;
  s->step_slots = kThreads - s->step_rows * s->slots;
  return true;
}

// Slot k of row r of the span (r >= rows: nothing): lane 0 of its vector is the row's element `first` (negative
// before the row's start), and its lanes [*lo, *hi) are the row's.
template <unsigned SRC>
__device__ __forceinline__ long long locate(const Span &s, unsigned r, unsigned k, int *lo, int *hi) {
  constexpr int v = int(16 / size_of(SRC));
  const unsigned long long row = reinterpret_cast<unsigned long long>(s.src) + r * s.src_pitch;
  const long long first = (long long)k * v - (long long)((row % 16) / size_of(SRC));
  const long long left = (long long)s.n - first;
  *lo = first < 0 ? int(-first) : 0;
  *hi = r >= s.rows ? 0 : left < v ? int(left) : v;
  return first;
}

// Where a thread's slots are: thread tid's kUnroll slots of a span's tile t are slots t * kTile + tid +
// i * kThreads, and its kDirectUnroll slots of a run's chunk c slots c * kChunk + tid + j * kThreads; the first
// found by a division, the next by adding.
struct Cursor {
  unsigned r, k;
  // Slot `slot` of s (a Span, or the direct path's Run: `slots` a row, kThreads slots on `step_rows` rows and
  // `step_slots` slots).
  template <typename S>
  __device__ __forceinline__ Cursor(const S &s, unsigned slot) {
    r = slot / s.slots;
    k = slot - r * s.slots;
  }
  template <typename S>
  __device__ __forceinline__ void next(const S &s) {
    r += s.step_rows;
    k += s.step_slots;
    if (k >= s.slots) {
      k -= s.slots;
      ++r;
    }
  }
};

// Thread tid's vectors of a tile: as 32-bit words, elements outside their slot's row zero (so 0 in amax).
struct Tile {
  unsigned w[kUnroll][4];
};

// Loads thread tid's slots of tile t; `stream`: the last read of these bytes (evict first).
template <unsigned SRC>
__device__ __forceinline__ void load(const Span &s, unsigned t, unsigned tid, bool stream, Tile &tile) {
  constexpr unsigned es = size_of(SRC);
  constexpr int v = int(16 / es);
  Cursor c(s, t * kTile + tid);
#pragma unroll
  for (unsigned j = 0; j < kUnroll; ++j, c.next(s)) {
    int lo, hi;
    const char *src = s.src + c.r * s.src_pitch + locate<SRC>(s, c.r, c.k, &lo, &hi) * es;
    unsigned(&w)[4] = tile.w[j];
    if (lo == 0 && hi == v) {
      const uint4 *p = reinterpret_cast<const uint4 *>(src);
      const uint4 x = stream ? __ldcs(p) : *p;
      w[0] = x.x, w[1] = x.y, w[2] = x.z, w[3] = x.w;
      continue;
    }
    w[0] = w[1] = w[2] = w[3] = 0;
#pragma unroll
    for (int e = 0; e < v; ++e) {
      if (e < lo || e >= hi) continue;
      if (es == 4) {
        w[e] = *reinterpret_cast<const unsigned *>(src + 4 * e);
      } else {
        w[e / 2] |= unsigned(*reinterpret_cast<const unsigned short *>(src + 2 * e)) << (16 * (e % 2));
      }
    }
  }
}

// Element e of a loaded vector, widened to f32.
template <unsigned SRC>
__device__ __forceinline__ float element(const unsigned (&w)[4], int e) {
  if (SRC == WB_CONVERT_F32) return wb_convert_bits_float(w[e]);
  const unsigned bits = (w[e / 2] >> (16 * (e % 2))) & 0xffffu;
  return SRC == WB_CONVERT_BF16 ? wb_convert_from_bf16(bits) : wb_convert_from_f16(bits);
}

// The larger of two magnitudes (sign bits clear), or of each pair of 16-bit ones. Where the GPU has 16-bit
// float pairs (compute capability 8.0; this module built for 8.9), one instruction that compares halves as
// floats, a NaN winning as its canonical NaN: the same order as the magnitudes' bits but for which NaN, and
// every NaN amax makes the same scale (wb_convert_scale).
template <unsigned SRC>
__device__ __forceinline__ unsigned fold_word(unsigned acc, unsigned magnitudes) {
  if (SRC == WB_CONVERT_F32) return max(acc, magnitudes);
#if __CUDA_ARCH__ >= 800
  unsigned folded;
  if constexpr (SRC == WB_CONVERT_BF16) {
    asm("max.NaN.bf16x2 %0, %1, %2;" : "=r"(folded) : "r"(acc), "r"(magnitudes));
  } else {
    asm("max.NaN.f16x2 %0, %1, %2;" : "=r"(folded) : "r"(acc), "r"(magnitudes));
  }
  return folded;
#else
  return __vmaxu2(acc, magnitudes);
#endif
}

// Magnitudes folded into acc, for the largest |x| of a group: f32 words as |x|'s bits, 16-bit halves as two
// 16-bit magnitudes at a time (their order is their f32 values' order, NaN above infinity); folded_amax turns
// acc into f32 bits (wb_convert_abs_bits). Words outside a group are zero (0 in amax).
template <unsigned SRC>
__device__ __forceinline__ unsigned fold_magnitudes(unsigned acc, const unsigned (&w)[4]) {
#pragma unroll
  for (int e = 0; e < 4; ++e) acc = fold_word<SRC>(acc, w[e] & (SRC == WB_CONVERT_F32 ? 0x7fffffffu : 0x7fff7fffu));
  return acc;
}

template <unsigned SRC>
__device__ __forceinline__ unsigned folded_amax(unsigned acc) {
  if (SRC == WB_CONVERT_F32) return acc;
  const unsigned half = max(acc & 0xffffu, acc >> 16);
  return wb_convert_abs_bits(SRC == WB_CONVERT_BF16 ? wb_convert_from_bf16(half) : wb_convert_from_f16(half));
}

// The largest |x| of a tile, as f32 bits, folded into m.
template <unsigned SRC>
__device__ __forceinline__ unsigned amax_of(const Tile &tile, unsigned m) {
  unsigned acc = 0;
#pragma unroll
  for (unsigned j = 0; j < kUnroll; ++j) acc = fold_magnitudes<SRC>(acc, tile.w[j]);
  return max(m, folded_amax<SRC>(acc));
}

// Stores a converted vector, `bytes` (8 or 4) at dst aligned to them, streaming: no kernel of ours reads it back.
template <unsigned bytes>
__device__ __forceinline__ void store_out(char *dst, const unsigned (&out)[2]) {
  if (bytes == 8) {
    __stcs(reinterpret_cast<uint2 *>(dst), make_uint2(out[0], out[1]));
  } else {
    __stcs(reinterpret_cast<unsigned *>(dst), out[0]);
  }
}

// Converts and stores thread tid's slots of tile t: one store per vector where the destination's address
// allows it, else element by element.
template <unsigned SRC, unsigned DST>
__device__ __forceinline__ void store(const Span &s, unsigned t, unsigned tid, const Tile &tile, float scale,
                                      unsigned fp8) {
  constexpr int v = int(16 / size_of(SRC));
  constexpr unsigned ds = size_of(DST), bytes = v * ds;  // 8 or 4
  Cursor c(s, t * kTile + tid);
#pragma unroll
  for (unsigned j = 0; j < kUnroll; ++j, c.next(s)) {
    int lo, hi;
    char *dst = s.dst + c.r * s.dst_pitch + locate<SRC>(s, c.r, c.k, &lo, &hi) * ds;
    unsigned out[2] = {0, 0};
#pragma unroll
    for (int e = 0; e < v; ++e) {
      const float x = element<SRC>(tile.w[j], e);
      if (DST == WB_CONVERT_BF16) {
        out[e / 2] |= wb_convert_to_bf16(x) << (16 * (e % 2));
      } else {
        out[e / 4] |= wb_convert_quantize(x, scale, fp8) << (8 * (e % 4));
      }
    }
    if (lo == 0 && hi == v && reinterpret_cast<unsigned long long>(dst) % bytes == 0) {
      store_out<bytes>(dst, out);
      continue;
    }
#pragma unroll
    for (int e = 0; e < v; ++e) {
      if (e < lo || e >= hi) continue;
      if (ds == 1) {
        dst[e] = char(out[e / 4] >> (8 * (e % 4)));
      } else {
        reinterpret_cast<unsigned short *>(dst)[e] = (unsigned short)(out[e / 2] >> (16 * (e % 2)));
      }
    }
  }
}

// Where pass 1 stopped: its last span's rectangle (of the destination's) and tile, whose data are in registers.
struct Last {
  unsigned rect, tile;
};

// Pass 1: thread tid's amax over its slots of the piece, leaving the last tile in `tile`.
template <unsigned SRC, unsigned DST>
__device__ __forceinline__ unsigned amax_pass(const Table &t, const wb_convert_dest &d, const Piece &p, unsigned tid,
                                              Tile &tile, Last *last) {
  unsigned m = 0;
  for (unsigned i = 0; i < d.rect_count; ++i) {
    const wb_convert_rect rect = t.rects[d.first_rect + i];
    Span s;
    if (!make_span<SRC, DST>(d, rect, t.source(rect.source), p, &s)) continue;
    for (unsigned k = 0; k < s.tiles; ++k) {
      load<SRC>(s, k, tid, false, tile);
      m = amax_of<SRC>(tile, m);
    }
    *last = Last{i, s.tiles - 1};
  }
  return m;
}

// Pass 2: converts and stores thread tid's slots of the piece, tiles in reverse; with `last`, that tile is
// `tile` already (pass 1's last) and is not read again.
template <unsigned SRC, unsigned DST>
__device__ __forceinline__ void store_pass(const Table &t, const wb_convert_dest &d, const Piece &p, unsigned tid,
                                          float scale, Tile &tile, const Last *last) {
  for (unsigned i = d.rect_count; i-- > 0;) {
    const wb_convert_rect rect = t.rects[d.first_rect + i];
    Span s;
    if (!make_span<SRC, DST>(d, rect, t.source(rect.source), p, &s)) continue;
    for (unsigned k = s.tiles; k-- > 0;) {
      if (last == nullptr || last->rect != i || last->tile != k) load<SRC>(s, k, tid, true, tile);
      store<SRC, DST>(s, k, tid, tile, scale, d.dst_dtype);
    }
  }
}

// The largest of the block's threads' m (every thread gets it).
__device__ __forceinline__ unsigned block_max(unsigned m) {
  __shared__ unsigned warp_max[kThreads / 32];
#pragma unroll
  for (int lane = 16; lane > 0; lane /= 2) m = max(m, __shfl_xor_sync(0xffffffffu, m, lane));
  if (threadIdx.x % 32 == 0) warp_max[threadIdx.x / 32] = m;
  __syncthreads();
#pragma unroll
  for (unsigned i = 0; i < kThreads / 32; ++i) m = max(m, warp_max[i]);
  return m;
}

// ---- the direct path -----------------------------------------------------------------------------------------
// Most pieces lie inside one rectangle whose rows are whole 16-byte vectors at aligned addresses, with
// destination rows that take one store per vector (a 128 x 128 block of a tensor that is a multiple of 8
// elements wide). Such a piece is a run of vectors, `slots` a row; a chunk of it is kDirectUnroll vectors a
// thread, all loaded before any is used (32 KiB of loads in flight a block). A piece of one chunk (a 128 x 128
// block of bf16 or f16) is read once, into registers, or into shared memory (convert_staged); pieces of several
// chunks (of f32: two) find their amax chunk by chunk and read the earlier chunks again, from L2, where the first
// pass left them.
constexpr unsigned kDirectUnroll = WB_CONVERT_DIRECT_UNROLL, kChunk = kThreads * kDirectUnroll;

struct Run {
  const char *src;
  char *dst;
  unsigned src_pitch, dst_pitch;  // bytes; a run's rows are less than 4 GiB apart
  unsigned slots, count, chunks;
  unsigned step_rows, step_slots;  // kThreads vectors on: whole rows, and slots beyond them
};

// Whether the piece is a run (above), and where.
template <unsigned SRC, unsigned DST>
__device__ __forceinline__ bool make_run(const Table &t, const wb_convert_dest &d, const Piece &p, Run *run) {
  constexpr unsigned es = size_of(SRC), ds = size_of(DST), out = 16 / es * ds;
  for (unsigned i = 0; i < d.rect_count; ++i) {
    const wb_convert_rect rect = t.rects[d.first_rect + i];
    const unsigned long long r1 = rect.row0 + rect.rows, c1 = rect.col0 + rect.cols;
    if (rect.row0 >= p.r1 || r1 <= p.r0 || rect.col0 >= p.c1 || c1 <= p.c0) continue;
    // Rectangles do not overlap: the first that meets the piece holds all of it, or the piece is not a run.
    if (rect.row0 > p.r0 || r1 < p.r1 || rect.col0 > p.c0 || c1 < p.c1) return false;
    const char *src = t.source(rect.source) + rect.src_offset + (p.r0 - rect.row0) * rect.src_pitch +
                      (p.c0 - rect.col0) * es;
    char *dst = reinterpret_cast<char *>(d.dst) + (p.r0 * d.cols + p.c0) * ds;
    const unsigned long long n = p.c1 - p.c0;
    if ((reinterpret_cast<unsigned long long>(src) | rect.src_pitch | n * es) % 16 != 0 ||
        (reinterpret_cast<unsigned long long>(dst) | d.cols * ds) % out != 0 || rect.src_pitch >> 32 != 0 ||
        (d.cols * ds) >> 32 != 0) {
      return false;
    }
    run->src = src;
    run->dst = dst;
    run->src_pitch = unsigned(rect.src_pitch);
    run->dst_pitch = unsigned(d.cols * ds);
    run->slots = unsigned(n * es / 16);
    run->count = unsigned((p.r1 - p.r0) * run->slots);  // < 2^31: convert_run.cpp's check
    run->chunks = (run->count + kChunk - 1) / kChunk;
    run->step_rows = kThreads / run->slots;
    run->step_slots = kThreads - run->step_rows * run->slots;
    return true;
  }
  return false;  // padding only: the general path's (it writes nothing but the scale)
}

// a * b, 32 x 32 -> 64 bits in one instruction (a row's offset: its index times the pitch).
__device__ __forceinline__ unsigned long long wide(unsigned a, unsigned b) {
  unsigned long long product;
  asm("mul.wide.u32 %0, %1, %2;" : "=l"(product) : "r"(a), "r"(b));
  return product;
}

// Whether chunk c is whole and kThreads vectors on is whole rows on (a row's vectors divide kThreads, as a 128 x
// 128 block's 16 do): then a thread's vectors of the chunk are step_rows rows apart, each one addition from the
// last, with no check against the run's end (the most common chunk: no cursor, no branch a vector).
__device__ __forceinline__ bool rows_apart(const Run &run, unsigned c) {
  return run.step_slots == 0 && (c + 1) * kChunk <= run.count;
}

// A vector read; `stream`: the last read of these bytes (evict first), else kept in L2 for the next pass.
__device__ __forceinline__ uint4 read_vector(const char *p, bool stream) {
  return stream ? __ldcs(reinterpret_cast<const uint4 *>(p)) : __ldcg(reinterpret_cast<const uint4 *>(p));
}

// Thread tid's vectors of chunk c: c * kChunk + tid + j * kThreads, zero past the run.
__device__ __forceinline__ void load_chunk(const Run &run, unsigned c, bool stream, uint4 (&v)[kDirectUnroll]) {
  const unsigned first = c * kChunk + threadIdx.x;
  Cursor at(run, first);
  if (rows_apart(run, c)) {
    const char *p = run.src + wide(at.r, run.src_pitch) + at.k * 16ull;
    const unsigned long long step = wide(run.step_rows, run.src_pitch);
#pragma unroll
    for (unsigned j = 0; j < kDirectUnroll; ++j, p += step) v[j] = read_vector(p, stream);
    return;
  }
#pragma unroll
  for (unsigned j = 0; j < kDirectUnroll; ++j) {
    v[j] = make_uint4(0, 0, 0, 0);
    if (first + j * kThreads < run.count) {
      v[j] = read_vector(run.src + wide(at.r, run.src_pitch) + at.k * 16ull, stream);
    }
    at.next(run);
  }
}

// The words of a vector.
__device__ __forceinline__ void words(const uint4 &v, unsigned (&w)[4]) {
  w[0] = v.x, w[1] = v.y, w[2] = v.z, w[3] = v.w;
}

// The largest |x| of the vectors, as f32 bits (wb_convert_abs_bits), folded into m.
template <unsigned SRC>
__device__ __forceinline__ unsigned chunk_amax(const uint4 (&v)[kDirectUnroll], unsigned m) {
  unsigned acc = 0;
#pragma unroll
  for (unsigned j = 0; j < kDirectUnroll; ++j) {
    unsigned w[4];
    words(v[j], w);
    acc = fold_magnitudes<SRC>(acc, w);
  }
  return max(m, folded_amax<SRC>(acc));
}

// A group's scale and how its elements are divided (weightbus.h; convert_params.h, "the GPU's quotient").
struct Scale {
  float scale, reciprocal;
  bool direct;  // through the reciprocal
  __device__ __forceinline__ explicit Scale(float s)
      : scale(s), reciprocal(1.0f / s), direct(wb_convert_reciprocal_fits(s) != 0) {}
  __device__ __forceinline__ Scale(float s, float r) : scale(s), reciprocal(r), direct(true) {}
};

// Two finite quotients as FP8 (FP8: the dtype), each clamped to [-M, M] and rounded (wb_convert_to_fp8): hi in
// bits 8..15, lo in 0..7. Where the GPU has FP8 conversions (compute capability 8.9; this module built for it,
// copy_batch.cpp), one instruction whose saturation is the clamp (tests/gpu/fp8_exhaustive.py compares them on
// every finite f32).
template <unsigned FP8>
__device__ __forceinline__ unsigned fp8_pair(float hi, float lo) {
#if __CUDA_ARCH__ >= 890
  unsigned short bits;
  if constexpr (FP8 == WB_CONVERT_E4M3) {
    asm("cvt.rn.satfinite.e4m3x2.f32 %0, %1, %2;" : "=h"(bits) : "f"(hi), "f"(lo));
  } else {
    asm("cvt.rn.satfinite.e5m2x2.f32 %0, %1, %2;" : "=h"(bits) : "f"(hi), "f"(lo));
  }
  return bits;
#else
  const float m = wb_convert_fp8_max(FP8);
  return wb_convert_to_fp8(fminf(fmaxf(hi, -m), m), FP8) << 8 | wb_convert_to_fp8(fminf(fmaxf(lo, -m), m), FP8);
#endif
}

// One vector's elements converted: 16 / size_of(SRC) of them, into out's low bytes (FP8: the FP8 dtype, unused
// for bf16). FP8 with a scale that divides through its reciprocal (the caller's check): |x| <= amax and the
// scale is finite, so the quotients are finite.
template <unsigned SRC, unsigned DST, unsigned FP8>
__device__ __forceinline__ void convert_vector(const uint4 &v, const Scale &s, unsigned (&out)[2]) {
  constexpr int n = int(16 / size_of(SRC));
  unsigned w[4];
  words(v, w);
  out[0] = out[1] = 0;
  if constexpr (DST == WB_CONVERT_BF16) {
#pragma unroll
    for (int e = 0; e < n; ++e) out[e / 2] |= wb_convert_to_bf16(element<SRC>(w, e)) << (16 * (e % 2));
  } else {
#pragma unroll
    for (int e = 0; e < n; e += 2) {
      const float lo = wb_convert_quotient(element<SRC>(w, e), s.scale, s.reciprocal);
      const float hi = wb_convert_quotient(element<SRC>(w, e + 1), s.scale, s.reciprocal);
      out[e / 4] |= fp8_pair<FP8>(hi, lo) << (8 * (e % 4));
    }
  }
}

// Converts and stores thread tid's vectors of chunk c, each divided by scale_of(its row) (FP8 as for
// convert_vector): one Scale for a block's run, each row's own for a channel piece's (convert_rows).
template <unsigned SRC, unsigned DST, unsigned FP8, typename ScaleOf>
__device__ __forceinline__ void store_chunk(const Run &run, unsigned c, const uint4 (&v)[kDirectUnroll],
                                            const ScaleOf &scale_of) {
  constexpr unsigned bytes = 16 / size_of(SRC) * size_of(DST);  // 8 or 4
  const unsigned first = c * kChunk + threadIdx.x;
  Cursor at(run, first);
  if (rows_apart(run, c)) {
    char *dst = run.dst + wide(at.r, run.dst_pitch) + at.k * (unsigned long long)bytes;
    const unsigned long long step = wide(run.step_rows, run.dst_pitch);
#pragma unroll
    for (unsigned j = 0; j < kDirectUnroll; ++j, dst += step) {
      unsigned out[2];
      convert_vector<SRC, DST, FP8>(v[j], scale_of(at.r + j * run.step_rows), out);
      store_out<bytes>(dst, out);
    }
    return;
  }
#pragma unroll
  for (unsigned j = 0; j < kDirectUnroll; ++j) {
    if (first + j * kThreads < run.count) {
      unsigned out[2];
      convert_vector<SRC, DST, FP8>(v[j], scale_of(at.r), out);
      store_out<bytes>(run.dst + wide(at.r, run.dst_pitch) + at.k * (unsigned long long)bytes, out);
    }
    at.next(run);
  }
}

// store_chunk for the destination's dtype: the FP8 type chosen once a chunk, not once an element.
template <unsigned SRC, unsigned DST>
__device__ __forceinline__ void store_chunk(const Run &run, unsigned c, const uint4 (&v)[kDirectUnroll],
                                            const Scale &s, unsigned dst_dtype) {
  const auto same = [&s](unsigned) { return s; };
  if (DST == WB_CONVERT_BF16 || dst_dtype == WB_CONVERT_E4M3) {
    store_chunk<SRC, DST, WB_CONVERT_E4M3>(run, c, v, same);
  } else {
    store_chunk<SRC, DST, WB_CONVERT_E5M2>(run, c, v, same);
  }
}

// The largest |x| of one vector, as f32 bits (wb_convert_abs_bits).
template <unsigned SRC>
__device__ __forceinline__ unsigned vector_amax(const uint4 &v) {
  unsigned w[4];
  words(v, w);
  return folded_amax<SRC>(fold_magnitudes<SRC>(0, w));
}

// A channel piece's rows' scales and reciprocals (convert_rows), in the block's shared memory.
struct RowScales {
  unsigned amax[WB_CONVERT_CHANNEL_ROWS];
  float scale[WB_CONVERT_CHANNEL_ROWS], reciprocal[WB_CONVERT_CHANNEL_ROWS];
  int direct;
};

// A WB_CONVERT_SCALE_CHANNEL piece of `rows` rows that is a run of one chunk (wb_convert_channel_rows sizes
// them so), its scales at `scales`: read once, each row's amax gathered in shared memory, each row divided by
// its own scale. False, having written nothing, where a row's scale divides (the general path then takes the
// rows one by one). A function of its own, so that its registers are not the block path's.
template <unsigned SRC>
__device__ __noinline__ bool convert_rows(const Run run, float *scales, unsigned rows, unsigned fp8) {
  __shared__ RowScales rs;
  if (threadIdx.x < rows) rs.amax[threadIdx.x] = 0;
  if (threadIdx.x == 0) rs.direct = 1;
  uint4 v[kDirectUnroll];
  load_chunk(run, 0, true, v);
  __syncthreads();
  {
    const unsigned first = threadIdx.x;
    Cursor at(run, first);
#pragma unroll
    for (unsigned j = 0; j < kDirectUnroll; ++j) {
      if (first + j * kThreads < run.count) {
        const unsigned m = vector_amax<SRC>(v[j]);
        if (m != 0) atomicMax(&rs.amax[at.r], m);
      }
      at.next(run);
    }
  }
  __syncthreads();
  if (threadIdx.x < rows) {
    const float s = wb_convert_scale(rs.amax[threadIdx.x], fp8);
    rs.scale[threadIdx.x] = s;
    rs.reciprocal[threadIdx.x] = 1.0f / s;
    if (!wb_convert_reciprocal_fits(s)) rs.direct = 0;
  }
  __syncthreads();
  const bool direct = rs.direct != 0;
  __syncthreads();  // every thread has read rs.direct (the general path may follow)
  if (!direct) return false;
  if (threadIdx.x < rows) scales[threadIdx.x] = rs.scale[threadIdx.x];
  const auto own = [](unsigned r) { return Scale(rs.scale[r], rs.reciprocal[r]); };
  if (fp8 == WB_CONVERT_E4M3) {
    store_chunk<SRC, kFp8, WB_CONVERT_E4M3>(run, 0, v, own);
  } else {
    store_chunk<SRC, kFp8, WB_CONVERT_E5M2>(run, 0, v, own);
  }
  return true;
}

// What a direct piece does once its amax is known in phase MAIN (after_amax).
enum class After { kDone, kConvert, kGeneral };

// After a piece's amax (bits, the whole block's) in phase MAIN: for WB_CONVERT_SCALE_TENSOR the amax is folded
// into the destination's word, and the piece is done until QUANT; else its group's scale goes to *s and the
// destination's scales, to convert with, or, where it divides (convert_params.h), nowhere: the general path then
// converts the piece, dividing.
__device__ __forceinline__ After after_amax(const wb_convert_dest &d, const Piece &p, unsigned bits, Scale *s) {
  if (d.layout == WB_CONVERT_SCALE_TENSOR) {
    if (threadIdx.x == 0 && bits != 0) atomicMax(reinterpret_cast<unsigned *>(d.scale), bits);
    return After::kDone;
  }
  *s = Scale(wb_convert_scale(bits, d.dst_dtype));
  if (!s->direct) return After::kGeneral;
  if (threadIdx.x == 0) reinterpret_cast<float *>(d.scale)[p.index] = s->scale;
  return After::kConvert;
}

// A vector of global memory copied into shared memory without passing through registers (compute capability
// 8.0; before it, a load and a store), read once (cached in L2 only).
__device__ __forceinline__ void stage_vector(uint4 *to, const char *from) {
#if __CUDA_ARCH__ >= 800
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(unsigned(__cvta_generic_to_shared(to))), "l"(from)
               : "memory");
#else
  *to = __ldcs(reinterpret_cast<const uint4 *>(from));
#endif
}

// Waits for this thread's stage_vector copies.
__device__ __forceinline__ void staged() {
#if __CUDA_ARCH__ >= 800
  asm volatile("cp.async.commit_group;\n\tcp.async.wait_group 0;" ::: "memory");
#endif
}

// Where convert_staged stages a chunk: one array for every source dtype (a template's would be one each).
__shared__ uint4 stage[kChunk];

// Converts and stores this thread's staged vectors (convert_staged), the first at dst, the next `step` bytes on.
template <unsigned SRC, unsigned FP8>
__device__ __forceinline__ void store_staged(const uint4 *stage, const Scale &s, char *dst, unsigned long long step) {
  constexpr unsigned bytes = 16 / size_of(SRC);  // FP8 bytes a vector
#pragma unroll
  for (unsigned j = 0; j < kDirectUnroll; ++j, dst += step) {
    unsigned out[2];
    convert_vector<SRC, kFp8, FP8>(stage[j * kThreads + threadIdx.x], s, out);
    store_out<bytes>(dst, out);
  }
}

// Phase MAIN of an FP8 piece that is one whole chunk whose vectors are rows apart (a 128 x 128 block of bf16 or
// f16): the chunk staged in shared memory by asynchronous copies, which hold no registers in flight, rather than
// loaded into registers: measured on an H200 at 0.83 of the copy bandwidth against 0.77 for a plan's blocks
// (docs/benchmarks.md), with the same three blocks a multiprocessor (more made the other paths spill). A thread
// reads back only the vectors it staged (no barrier but block_max's). False, having written nothing, where the
// scale divides (as convert_run).
template <unsigned SRC>
__device__ __forceinline__ bool convert_staged(const wb_convert_dest &d, const Piece &p, const Run &run) {
  const Cursor at(run, threadIdx.x);
  {
    const char *src = run.src + wide(at.r, run.src_pitch) + at.k * 16ull;
    const unsigned long long step = wide(run.step_rows, run.src_pitch);
#pragma unroll
    for (unsigned j = 0; j < kDirectUnroll; ++j, src += step) stage_vector(&stage[j * kThreads + threadIdx.x], src);
  }
  staged();
  unsigned acc = 0;
#pragma unroll
  for (unsigned j = 0; j < kDirectUnroll; ++j) {
    unsigned w[4];
    words(stage[j * kThreads + threadIdx.x], w);
    acc = fold_magnitudes<SRC>(acc, w);
  }
  Scale s(1.0f);
  if (const After after = after_amax(d, p, block_max(folded_amax<SRC>(acc)), &s); after != After::kConvert) {
    return after == After::kDone;
  }
  char *dst = run.dst + wide(at.r, run.dst_pitch) + at.k * (16ull / size_of(SRC));
  const unsigned long long step = wide(run.step_rows, run.dst_pitch);
  if (d.dst_dtype == WB_CONVERT_E4M3) {
    store_staged<SRC, WB_CONVERT_E4M3>(stage, s, dst, step);
  } else {
    store_staged<SRC, WB_CONVERT_E5M2>(stage, s, dst, step);
  }
  return true;
}

// The block's piece of d when it is a run, in phase MAIN or QUANT; false, having written nothing, where its
// scale is one that divides (convert_params.h): the general path then converts the piece, dividing.
template <unsigned SRC, unsigned DST>
__device__ __forceinline__ bool convert_run(const wb_convert_dest &d, const Piece &p, unsigned phase,
                                            const Run &run) {
  if constexpr (DST != WB_CONVERT_BF16) {
    if (d.layout == WB_CONVERT_SCALE_CHANNEL && p.r1 - p.r0 > 1) {
      return run.chunks == 1 &&
             convert_rows<SRC>(run, reinterpret_cast<float *>(d.scale) + p.r0, unsigned(p.r1 - p.r0), d.dst_dtype);
    }
  }
  uint4 v[kDirectUnroll];
  if (DST == WB_CONVERT_BF16 || phase == WB_CONVERT_PHASE_QUANT) {
    const Scale s(DST == WB_CONVERT_BF16 ? 1.0f : wb_convert_scale(*reinterpret_cast<unsigned *>(d.scale), d.dst_dtype));
    if (!s.direct) return false;
    for (unsigned c = 0; c < run.chunks; ++c) {
      load_chunk(run, c, true, v);
      store_chunk<SRC, DST>(run, c, v, s, d.dst_dtype);
    }
    return true;
  }
  if constexpr (DST != WB_CONVERT_BF16) {
    if (rows_apart(run, 0) && run.chunks == 1) return convert_staged<SRC>(d, p, run);
  }
  // Pass 1: the amax, chunk by chunk, the last left in v; a piece of one chunk is never read again.
  unsigned m = 0;
  for (unsigned c = 0; c < run.chunks; ++c) {
    load_chunk(run, c, run.chunks == 1, v);
    m = chunk_amax<SRC>(v, m);
  }
  Scale s(1.0f);
  if (const After after = after_amax(d, p, block_max(m), &s); after != After::kConvert) {
    return after == After::kDone;
  }
  // Pass 2: the chunks in reverse, the last from registers.
  for (unsigned c = run.chunks; c-- > 0;) {
    if (c + 1 != run.chunks) load_chunk(run, c, true, v);
    store_chunk<SRC, DST>(run, c, v, s, d.dst_dtype);
  }
  return true;
}

// ---- a piece ----------------------------------------------------------------------------------------------

// One group of d in phase MAIN or QUANT through the general loops (p: the group, or a WB_CONVERT_SCALE_TENSOR
// piece).
template <unsigned SRC, unsigned DST>
__device__ __forceinline__ void convert_group(const Table &t, const wb_convert_dest &d, const Piece &p,
                                              unsigned phase) {
  const unsigned tid = threadIdx.x;
  Tile tile;
  if (DST == WB_CONVERT_BF16) return store_pass<SRC, DST>(t, d, p, tid, 0.0f, tile, nullptr);
  unsigned *word = reinterpret_cast<unsigned *>(d.scale);
  if (phase == WB_CONVERT_PHASE_QUANT) {
    return store_pass<SRC, DST>(t, d, p, tid, wb_convert_scale(*word, d.dst_dtype), tile, nullptr);
  }
  Last last{0, 0};
  const unsigned bits = block_max(amax_pass<SRC, DST>(t, d, p, tid, tile, &last));
  if (d.layout == WB_CONVERT_SCALE_TENSOR) {
    if (tid == 0 && bits != 0) atomicMax(word, bits);
    return;
  }
  const float scale = wb_convert_scale(bits, d.dst_dtype);
  if (tid == 0) reinterpret_cast<float *>(d.scale)[p.index] = scale;
  store_pass<SRC, DST>(t, d, p, tid, scale, tile, &last);
}

// The block's piece of d in phase MAIN or QUANT where it is not a run: its group, or a WB_CONVERT_SCALE_CHANNEL
// piece's rows one after another. A function of its own, so that its registers (it needs more than the
// kernel's bound, and spills) are not the direct path's.
template <unsigned SRC, unsigned DST>
__device__ __noinline__ void convert_general(const Table t, const wb_convert_dest d, const Piece p, unsigned phase) {
  if (d.layout != WB_CONVERT_SCALE_CHANNEL || p.r1 - p.r0 == 1) return convert_group<SRC, DST>(t, d, p, phase);
  for (unsigned long long r = p.r0; r < p.r1; ++r) {
    convert_group<SRC, DST>(t, d, Piece{r, r + 1, p.c0, p.c1, r}, phase);
    __syncthreads();  // every warp has read block_max's words before the next row writes them
  }
}

// The block's piece of d in phase MAIN or QUANT.
template <unsigned SRC, unsigned DST>
__device__ __noinline__ void convert_piece(const Table t, const wb_convert_dest d, const Piece p, unsigned phase) {
  Run run;
  if (make_run<SRC, DST>(t, d, p, &run) && convert_run<SRC, DST>(d, p, phase, run)) return;
  __syncthreads();  // every warp has read block_max's words (a run that fell back) before the general path's
  convert_general<SRC, DST>(t, d, p, phase);
}

// Block blockIdx.x of a MAIN or QUANT launch of `count` jobs.
__device__ __forceinline__ void convert_block(const Table &t, unsigned count, unsigned phase) {
  unsigned lo = 0, hi = count - 1;  // the last job whose first block is at or before this block
  while (lo < hi) {
    const unsigned mid = (lo + hi + 1) / 2;
    if (t.jobs[mid].first_block <= blockIdx.x) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  const wb_convert_job job = t.jobs[lo];
  const wb_convert_dest d = t.dests[job.dest];
  unsigned long long rows, cols;
  wb_convert_piece_shape(&d, &rows, &cols);
  const unsigned long long across = (d.cols + cols - 1) / cols;
  Piece p;
  p.index = job.first_piece + (blockIdx.x - job.first_block);
  p.r0 = p.index / across * rows;
  p.c0 = (p.index % across) * cols;
  p.r1 = min(p.r0 + rows, d.rows);
  p.c1 = min(p.c0 + cols, d.cols);
  if (d.layout == WB_CONVERT_SCALE_CHANNEL) p.index = p.r0;  // its first row's scale (its piece holds rows)
  switch (d.src_dtype << 8 | d.dst_dtype) {
    case WB_CONVERT_BF16 << 8 | WB_CONVERT_E4M3:
    case WB_CONVERT_BF16 << 8 | WB_CONVERT_E5M2:
      return convert_piece<WB_CONVERT_BF16, kFp8>(t, d, p, phase);
    case WB_CONVERT_F16 << 8 | WB_CONVERT_E4M3:
    case WB_CONVERT_F16 << 8 | WB_CONVERT_E5M2:
      return convert_piece<WB_CONVERT_F16, kFp8>(t, d, p, phase);
    case WB_CONVERT_F32 << 8 | WB_CONVERT_E4M3:
    case WB_CONVERT_F32 << 8 | WB_CONVERT_E5M2:
      return convert_piece<WB_CONVERT_F32, kFp8>(t, d, p, phase);
    case WB_CONVERT_F32 << 8 | WB_CONVERT_BF16:
      return convert_piece<WB_CONVERT_F32, WB_CONVERT_BF16>(t, d, p, phase);
    default:  // convert_run.cpp launches no other pair
      return;
  }
}

// A ZERO or SCALE launch: a thread per job, each a WB_CONVERT_SCALE_TENSOR destination's scale word.
__device__ __forceinline__ void tensor_scale(const Table &t, unsigned count, unsigned phase) {
  const unsigned i = blockIdx.x * kThreads + threadIdx.x;
  if (i >= count) return;
  const wb_convert_dest d = t.dests[t.jobs[i].dest];
  unsigned *word = reinterpret_cast<unsigned *>(d.scale);
  *word = phase == WB_CONVERT_PHASE_ZERO ? 0u : wb_convert_float_bits(wb_convert_scale(*word, d.dst_dtype));
}

// Both kernels' body, compiled once.
__device__ __noinline__ void run(const Table t, unsigned count, unsigned phase) {
  if (phase == WB_CONVERT_PHASE_ZERO || phase == WB_CONVERT_PHASE_SCALE) return tensor_scale(t, count, phase);
  convert_block(t, count, phase);
}

}  // namespace convert
}  // namespace

extern "C" __global__ void __launch_bounds__(WB_CONVERT_THREADS, WB_CONVERT_MIN_BLOCKS)
    wb_convert_plan(const __grid_constant__ wb_convert_plan_params params) {
  convert::run(convert::Table{reinterpret_cast<const wb_convert_job *>(params.jobs),
                              reinterpret_cast<const wb_convert_dest *>(params.dests),
                              reinterpret_cast<const wb_convert_rect *>(params.rects), params.sources},
               params.count, params.phase);
}

extern "C" __global__ void __launch_bounds__(WB_CONVERT_THREADS, WB_CONVERT_MIN_BLOCKS)
    wb_convert_batch(const __grid_constant__ wb_convert_batch_params params) {
  convert::run(convert::Table{params.jobs, params.dests, params.rects, params.sources}, params.count, params.phase);
}
