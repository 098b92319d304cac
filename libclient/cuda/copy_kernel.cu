// The copy kernels. wb_copy_batch: up to WB_COPY_MAX_COPIES device-to-device copies in one launch, for the small
// same-GPU copies of wb_snapshot_copy_into (copy_batch.cpp), which as one cuMemcpyAsync each cost the driver's
// launch overhead per tensor. wb_copy_plan: a resharding plan's copies, strided or not, from descriptors that
// stay in device memory (plan_run.cpp), a plan's whole run in a few launches. Built to PTX and embedded in the
// library (libclient/CMakeLists.txt); the driver JIT-compiles it for the GPU on first use. No runtime API, no
// header but the parameters' layout.
//
// Work split: every copy is cut into WB_COPY_CHUNK_BYTES chunks and each block copies one chunk, finding its
// copy by a binary search of the copies' first_chunk (a prefix sum of chunk counts). So one large copy among
// hundreds of small ones spreads over as many SMs as its size warrants, where one block per copy would leave
// it on one SM long after the rest are done. The search is ~11 dependent reads of the parameters, the same
// address for every thread of the block (a broadcast), against a chunk's 64 KiB of copying.
#include "copy_kernel_params.h"

namespace {

// Copies n bytes as elements of T (aligned for T at src and dst), the tail below sizeof(T) as bytes. Each
// thread issues four loads before their stores, so that it has several memory requests in flight.
template <typename T>
__device__ void copy_as(const char *src, char *dst, unsigned n) {
  const T *s = reinterpret_cast<const T *>(src);
  T *d = reinterpret_cast<T *>(dst);
  const unsigned words = n / sizeof(T), step = blockDim.x;
  unsigned i = threadIdx.x;
  for (; i + 3 * step < words; i += 4 * step) {
    const T a = s[i], b = s[i + step], c = s[i + 2 * step], e = s[i + 3 * step];
    d[i] = a;
    d[i + step] = b;
    d[i + 2 * step] = c;
    d[i + 3 * step] = e;
  }
  for (; i < words; i += step) d[i] = s[i];
  const unsigned done = words * unsigned(sizeof(T));
  if (threadIdx.x < n - done) dst[done + threadIdx.x] = src[done + threadIdx.x];
}

// Copies `rows` rows of row_bytes (a multiple of sizeof(T), rows * row_bytes within a chunk) at src + i * src_pitch
// to dst + i * dst_pitch, with the pitches and both addresses aligned for T: the block's threads walk the rows'
// words as one sequence, four loads in flight each, so that narrow rows keep as many requests in flight as wide
// ones.
template <typename T>
__device__ void copy_rows(const char *src, char *dst, unsigned row_bytes, unsigned rows,
                          unsigned long long src_pitch, unsigned long long dst_pitch) {
  const unsigned per_row = row_bytes / unsigned(sizeof(T)), words = per_row * rows, step = blockDim.x;
  auto from = [&](unsigned i) {
    const unsigned r = i / per_row;
    return reinterpret_cast<const T *>(src + r * src_pitch) + (i - r * per_row);
  };
  auto to = [&](unsigned i) {
    const unsigned r = i / per_row;
    return reinterpret_cast<T *>(dst + r * dst_pitch) + (i - r * per_row);
  };
  unsigned i = threadIdx.x;
  for (; i + 3 * step < words; i += 4 * step) {
    const T a = *from(i), b = *from(i + step), c = *from(i + 2 * step), e = *from(i + 3 * step);
    *to(i) = a;
    *to(i + step) = b;
    *to(i + 2 * step) = c;
    *to(i + 3 * step) = e;
  }
  for (; i < words; i += step) *to(i) = *from(i);
}

// The widest access (16, 8, 4, 2 or 1 bytes) that every address and length in `bits` allows, as __ffsll of it.
__device__ int widest(unsigned long long bits) { return __ffsll((long long)(bits | 16u)); }

}  // namespace

extern "C" __global__ void __launch_bounds__(WB_COPY_THREADS) wb_copy_batch(const wb_copy_params params) {
  unsigned lo = 0, hi = params.count - 1;  // the last copy whose first chunk is at or before this block
  while (lo < hi) {
    const unsigned mid = (lo + hi + 1) / 2;
    if (params.copies[mid].first_chunk <= blockIdx.x) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  const wb_copy_desc &c = params.copies[lo];
  const unsigned begin = (blockIdx.x - c.first_chunk) * WB_COPY_CHUNK_BYTES;
  const unsigned n = min(c.bytes - begin, WB_COPY_CHUNK_BYTES);
  const char *src = reinterpret_cast<const char *>(c.src) + begin;
  char *dst = reinterpret_cast<char *>(c.dst) + begin;
  // Chunks begin at multiples of 64 KiB, so a chunk is aligned as its copy is: the widest access that both
  // addresses allow, 16 bytes for tensors and buffers from CUDA's allocators.
  switch (widest(c.src | c.dst)) {
    case 5:
      copy_as<uint4>(src, dst, n);
      break;
    case 4:
      copy_as<uint2>(src, dst, n);
      break;
    case 3:
      copy_as<unsigned int>(src, dst, n);
      break;
    case 2:
      copy_as<unsigned short>(src, dst, n);
      break;
    default:
      copy_as<unsigned char>(src, dst, n);
  }
}

namespace {

// Chunk `chunk` of copy c, whose source is at `source`.
__device__ void copy_chunk(const wb_plan_copy &c, const char *source, unsigned chunk) {
  const char *src = source + c.src_offset;
  char *dst = reinterpret_cast<char *>(c.dst);
  if (c.rows_per_chunk == 1) {  // a piece of one row, at a multiple of the chunk size in it
    const unsigned row = chunk / c.pieces;
    const unsigned long long begin = (unsigned long long)(chunk - row * c.pieces) * WB_COPY_CHUNK_BYTES;
    const unsigned n = unsigned(min(c.row_bytes - begin, (unsigned long long)WB_COPY_CHUNK_BYTES));
    src += row * c.src_pitch + begin;
    dst += row * c.dst_pitch + begin;
    switch (widest((unsigned long long)src | (unsigned long long)dst)) {
      case 5:
        return copy_as<uint4>(src, dst, n);
      case 4:
        return copy_as<uint2>(src, dst, n);
      case 3:
        return copy_as<unsigned int>(src, dst, n);
      case 2:
        return copy_as<unsigned short>(src, dst, n);
      default:
        return copy_as<unsigned char>(src, dst, n);
    }
  }
  const unsigned first_row = chunk * c.rows_per_chunk, rows = min(c.rows_per_chunk, c.rows - first_row);
  const unsigned row_bytes = unsigned(c.row_bytes);  // within half a chunk here
  src += first_row * c.src_pitch;
  dst += first_row * c.dst_pitch;
  switch (widest((unsigned long long)src | (unsigned long long)dst | c.src_pitch | c.dst_pitch | row_bytes)) {
    case 5:
      return copy_rows<uint4>(src, dst, row_bytes, rows, c.src_pitch, c.dst_pitch);
    case 4:
      return copy_rows<uint2>(src, dst, row_bytes, rows, c.src_pitch, c.dst_pitch);
    case 3:
      return copy_rows<unsigned int>(src, dst, row_bytes, rows, c.src_pitch, c.dst_pitch);
    case 2:
      return copy_rows<unsigned short>(src, dst, row_bytes, rows, c.src_pitch, c.dst_pitch);
    default:
      return copy_rows<unsigned char>(src, dst, row_bytes, rows, c.src_pitch, c.dst_pitch);
  }
}

}  // namespace

// wb_plan_params with room for N sources: the parameters of wb_copy_plan_<N> (copy_kernel_params.h).
template <unsigned N>
struct SmallPlanParams {
  unsigned long long copies, first_chunks;
  unsigned int count, unused;
  unsigned long long guard;
  unsigned long long sources[N];
};
static_assert(__builtin_offsetof(SmallPlanParams<64>, sources) == __builtin_offsetof(wb_plan_params, sources),
              "one layout up to the sources");
constexpr unsigned kSmallCapacities[] = {WB_PLAN_SMALL_CAPACITIES};
static_assert(sizeof(kSmallCapacities) / sizeof(unsigned) == WB_PLAN_SMALL_KERNELS && kSmallCapacities[0] == 64 &&
                  kSmallCapacities[1] == 256 && kSmallCapacities[2] == 1024,
              "a kernel below for each small capacity");

// A block per chunk, as in wb_copy_batch (four chunks a block, tried on an H200, copied 2-3% slower).
template <typename Params>
__device__ void copy_plan(const Params &params) {
  // An armed run (libclient/cuda/arm_run.cpp) whose version did not come: wb_arm_guard left 0. Read through the
  // read-only cache: the flag was written by an earlier kernel, and is the same for every block.
  if (params.guard != 0 && __ldg(reinterpret_cast<const unsigned *>(params.guard)) != 1) return;
  const unsigned *first_chunks = reinterpret_cast<const unsigned *>(params.first_chunks);
  unsigned lo = 0, hi = params.count - 1;  // the last copy whose first chunk is at or before this block
  while (lo < hi) {
    const unsigned mid = (lo + hi + 1) / 2;
    if (__ldg(first_chunks + mid) <= blockIdx.x) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  const wb_plan_copy &c = reinterpret_cast<const wb_plan_copy *>(params.copies)[lo];
  copy_chunk(c, reinterpret_cast<const char *>(params.sources[c.source]), blockIdx.x - __ldg(first_chunks + lo));
}

extern "C" __global__ void __launch_bounds__(WB_PLAN_THREADS) wb_copy_plan(const wb_plan_params params) {
  copy_plan(params);
}
extern "C" __global__ void __launch_bounds__(WB_PLAN_THREADS) wb_copy_plan_64(const SmallPlanParams<64> params) {
  copy_plan(params);
}
extern "C" __global__ void __launch_bounds__(WB_PLAN_THREADS) wb_copy_plan_256(const SmallPlanParams<256> params) {
  copy_plan(params);
}
extern "C" __global__ void __launch_bounds__(WB_PLAN_THREADS) wb_copy_plan_1024(const SmallPlanParams<1024> params) {
  copy_plan(params);
}

// An armed run's guard, one thread, after the stream's wait on the arm's word passed: the word is final then
// (the token: the version came; token + 1: the arm was withdrawn). The plan kernels of the run read the flag.
extern "C" __global__ void wb_arm_guard(const unsigned long long *word, unsigned long long token, unsigned *flag) {
  *flag = *reinterpret_cast<const volatile unsigned long long *>(word) == token ? 1u : 0u;
}
