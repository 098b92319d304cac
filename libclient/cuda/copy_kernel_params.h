/* The copy kernel's parameters: one definition for the kernel (copy_kernel.cu) and for the library that fills
 * them (copy_plan.cpp). Plain C without includes, so that nvcc compiles the kernel with no header but this. */
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

#endif
