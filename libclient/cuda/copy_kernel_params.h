/* The copy kernels' parameters: one definition for the kernels (copy_kernel.cu) and for the library that fills
 * them (copy_plan.cpp, plan_program.cpp). Plain C without includes, so that nvcc compiles the kernels with no
 * header but this. */
#ifndef WEIGHTBUS_COPY_KERNEL_PARAMS_H
#define WEIGHTBUS_COPY_KERNEL_PARAMS_H

/* Each block copies one chunk of one copy: a copy of n bytes takes ceil(n / WB_COPY_CHUNK_BYTES) blocks. 64 KiB
 * is 16 loads of 16 bytes per thread, enough to keep a block's requests in flight, and small enough that a
 * 16 MiB copy spreads over 256 blocks. */
#define WB_COPY_CHUNK_BYTES 65536u
#define WB_COPY_THREADS 256u

/* Copies per launch: the most whose descriptors fit in the 32,764 bytes of kernel parameters that CUDA 12.1+
 * drivers allow on compute capability 7.0+ (8 + 24 * 1364 = 32,744 bytes). The descriptors travel in the
 * launch itself: no staging buffer to allocate, fill and order against the kernel. */
#define WB_COPY_MAX_COPIES 1364u

typedef struct wb_copy_desc {
  unsigned long long src;
  unsigned long long dst;
  unsigned int bytes;       /* > 0 and below 4 GiB: the kernel takes small copies only */
  unsigned int first_chunk; /* the chunks of the copies before this one: the block that starts it */
} wb_copy_desc;

typedef struct wb_copy_params {
  unsigned int count; /* copies[0 .. count) are used, count >= 1 */
  wb_copy_desc copies[WB_COPY_MAX_COPIES];
} wb_copy_params;

/* The plan kernel (wb_copy_plan): a resharding plan's copies, strided or not, kept in device memory from run to
 * run, since a plan is made once and run every version. What changes with the version is where each source
 * shard's bytes are (the replica the version is in): the launch carries those addresses, at most
 * WB_PLAN_MAX_SOURCES of them, which fill most of the 32,764 bytes of parameters. */
#define WB_PLAN_MAX_SOURCES 4000u

/* The plan kernel's block: twice copy-into's, which copied 2-3% faster on an H200 (a 16 GB plan). */
#define WB_PLAN_THREADS 512u

/* rows of row_bytes from sources[source] + src_offset + i * src_pitch to dst + i * dst_pitch. The kernel cuts
 * it into chunks of at most WB_COPY_CHUNK_BYTES: rows_per_chunk whole rows each where a row fits in half a
 * chunk, else each row in `pieces` chunks (rows_per_chunk 1). */
typedef struct wb_plan_copy {
  unsigned long long src_offset;
  unsigned long long dst;
  unsigned long long src_pitch;
  unsigned long long dst_pitch;
  unsigned long long row_bytes; /* > 0 */
  unsigned int rows;            /* >= 1 */
  unsigned int source;          /* index into the launch's sources */
  unsigned int rows_per_chunk;  /* >= 1 */
  unsigned int pieces;          /* >= 1; > 1 only with rows_per_chunk 1 */
} wb_plan_copy;

typedef struct wb_plan_params {
  unsigned long long copies;       /* device address of the launch's `count` descriptors */
  unsigned long long first_chunks; /* device address of `count` ascending first chunks: copy i starts at block
                                      first_chunks[i] (apart from the descriptors, so that the blocks' search
                                      reads 4 bytes a step, cached) */
  unsigned int count;              /* >= 1 */
  unsigned int unused;
  unsigned long long guard;        /* 0, or the device address of an armed run's flag (wb_arm_guard's): the
                                      blocks copy nothing unless it is 1 */
  unsigned long long sources[WB_PLAN_MAX_SOURCES]; /* the version's address of each source the copies read */
} wb_plan_params;

/* A launch costs the host time in proportion to its parameters (the driver copies them into the launch: a
 * 32 KB launch took ~80 us of an H200 host's time), so the plan kernel also comes with room for fewer sources:
 * wb_copy_plan_<N> for each N here, taking wb_plan_params's bytes up to sources[N] (the same layout), and a
 * launch uses the smallest that holds its sources. */
#define WB_PLAN_SMALL_CAPACITIES 64u, 256u, 1024u
#define WB_PLAN_SMALL_KERNELS 3

#endif
