/* The conversion tests' source tensors: deterministic contents of bf16, f16 or f32 whose magnitudes change from
 * block to block, with the cases the header defines placed where every layout meets them: a row of zeros (a
 * zero channel), a zero 64 x 32 block, one huge value (which pushes its neighbours to FP8 subnormals and zero),
 * rows of tiny values, and, where asked, a NaN and an infinity. */
#ifndef WEIGHTBUS_TESTS_CONVERSION_SOURCE_DATA_H
#define WEIGHTBUS_TESTS_CONVERSION_SOURCE_DATA_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <weightbus/weightbus.h>

/* Element (r, c) of a [rows, cols] tensor, version v, as a float that the dtype holds exactly (bf16: its top 16
 * bits; f16: within f16's range, rounded by the caller's encoding below). */
static inline float src_value(uint64_t v, uint32_t seed, uint64_t r, uint64_t c, uint64_t rows, uint64_t cols,
                              int special) {
  if (r == 1) return 0.0f;                                       /* a zero channel */
  if (r >= 64 && r < 128 && c >= 32 && c < 64) return 0.0f;      /* a zero 64 x 32 block */
  if (r == 2 && c == 3) return 30000.0f;                         /* saturates its groups' others */
  if (special && r == rows - 1 && c == cols - 1 && rows * cols > 4) return NAN;
  if (special && r == rows / 2 && c == 0 && rows * cols > 4) return INFINITY;
  uint64_t x = (v * 1000003u + seed * 7919u + r * 131u + c) * 6364136223846793005ull + 1442695040888963407ull;
  x ^= x >> 29;
  const double unit = (double)(x % 2000001) / 1000000.0 - 1.0; /* [-1, 1] */
  int scale_exp = (int)((r / 3 + c / 50) % 12) - 6;             /* magnitudes from 2^-6 to 2^5 */
  if (r == 5) scale_exp = -20;                                   /* tiny: FP8 subnormals and zeros */
  return (float)ldexp(unit, scale_exp);
}

/* f16 bits of f (in f16's range; mantissa truncated: any f16 is a fine source value). */
static inline uint16_t src_f16_bits(float f) {
  if (isnan(f)) return 0x7E00;
  const uint16_t sign = signbit(f) ? 0x8000 : 0;
  float a = fabsf(f);
  if (isinf(a)) return sign | 0x7C00;
  if (a < 6.103515625e-05f) return sign | (uint16_t)(a / 5.9604644775390625e-08f); /* subnormal steps */
  int e;
  const double m = frexp(a, &e); /* a = m * 2^e, m in [0.5, 1) */
  return sign | (uint16_t)((e + 14) << 10) | (uint16_t)((m * 2 - 1) * 1024);
}

/* Writes element i = r * cols + c of a tensor of dtype into data. */
static inline void src_store(void *data, uint64_t i, int32_t dtype, float f) {
  if (dtype == WB_DTYPE_F32) {
    ((float *)data)[i] = f;
  } else if (dtype == WB_DTYPE_BF16) {
    uint32_t bits;
    memcpy(&bits, &f, 4);
    ((uint16_t *)data)[i] = (uint16_t)(bits >> 16);
  } else {
    ((uint16_t *)data)[i] = src_f16_bits(f);
  }
}

/* Fills a [rows, cols] tensor (any tensor, as rows x cols) of version v. */
static inline void src_fill(void *data, int32_t dtype, uint64_t v, uint32_t seed, uint64_t rows, uint64_t cols,
                            int special) {
  for (uint64_t r = 0; r < rows; ++r) {
    for (uint64_t c = 0; c < cols; ++c) src_store(data, r * cols + c, dtype, src_value(v, seed, r, c, rows, cols, special));
  }
}

#endif
