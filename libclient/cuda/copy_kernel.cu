// The copy kernel: up to WB_COPY_MAX_COPIES device-to-device copies in one launch, for the small same-GPU copies
// of wb_snapshot_copy_into (copy_batch.cpp), which as one cuMemcpyAsync each cost the driver's launch overhead
// per tensor. Built to PTX and embedded in the library (libclient/CMakeLists.txt); the driver JIT-compiles it
// for the GPU on first use. No runtime API, no header but the parameters' layout.
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
  switch (__ffsll((long long)(c.src | c.dst | 16u))) {
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
