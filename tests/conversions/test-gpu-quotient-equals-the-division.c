/* The conversion kernels divide a group through its reciprocal (libclient/cuda/convert_params.h, "the GPU's
 * quotient"); the header defines an IEEE division (wb_convert_quantize, the host's). For every bf16 and every
 * f16 group amax whose scale the kernels divide that way, and every value x of that dtype in such a group
 * (|x| <= amax), both FP8 types: the same FP8 bits, the quotient clamped and rounded as the host rounds. About
 * 4 x 2^30 pairs, each an IEEE operation the GPU does alike, so this is the check of the formula itself;
 * tests/gpu/fp8_exhaustive.py runs the same on a GPU with its conversion instruction. */
#include <stdio.h>

#include "../../libclient/cuda/convert_params.h"

static unsigned long check(unsigned src, unsigned fp8) {
  const unsigned end = src == WB_CONVERT_F16 ? 0x7c00u : 0x7f80u; /* finite magnitudes */
  const float m = wb_convert_fp8_max(fp8);
  unsigned long bad = 0, pairs = 0, divided = 0;
  for (unsigned a = 1; a < end; ++a) {
    const float amax = src == WB_CONVERT_F16 ? wb_convert_from_f16(a) : wb_convert_from_bf16(a);
    const float scale = wb_convert_scale(wb_convert_abs_bits(amax), fp8), r = 1.0f / scale;
    if (!wb_convert_reciprocal_fits(scale)) {
      ++divided;
      continue;
    }
    for (unsigned xb = 0; xb < 0x10000u; ++xb) {
      const float x = src == WB_CONVERT_F16 ? wb_convert_from_f16(xb) : wb_convert_from_bf16(xb);
      if (!(wb_convert_abs_bits(x) <= wb_convert_abs_bits(amax))) continue;
      float q = wb_convert_quotient(x, scale, r);
      q = q > m ? m : q < -m ? -m : q;
      const unsigned got = wb_convert_to_fp8(q, fp8), want = wb_convert_quantize(x, scale, fp8);
      ++pairs;
      if (got != want && bad++ < 5) {
        fprintf(stderr, "dtype %u -> %u: amax bits %#x, x bits %#x: the division gives %#x, the reciprocal %#x\n",
                src, fp8, a, xb, want, got);
      }
    }
  }
  printf("dtype %u -> %u: %lu pairs, %lu group amaxes left to the division, %lu differences\n", src, fp8, pairs,
         divided, bad);
  return bad;
}

int main(void) {
  unsigned long bad = 0;
  const unsigned sources[] = {WB_CONVERT_BF16, WB_CONVERT_F16}, targets[] = {WB_CONVERT_E4M3, WB_CONVERT_E5M2};
  for (int i = 0; i < 2; ++i) {
    for (int j = 0; j < 2; ++j) bad += check(sources[i], targets[j]);
  }
  /* A normal amax's scale divides through the reciprocal; zero, NaN, infinity and tiny ones divide. */
  if (!wb_convert_reciprocal_fits(1.0f / 448) || wb_convert_reciprocal_fits(0.0f) ||
      wb_convert_reciprocal_fits(wb_convert_bits_float(0x7fffffffu)) ||
      wb_convert_reciprocal_fits(wb_convert_bits_float(0x7f800000u)) || wb_convert_reciprocal_fits(1e-31f)) {
    fprintf(stderr, "wb_convert_reciprocal_fits takes the wrong scales\n");
    ++bad;
  }
  return bad == 0 ? 0 : 1;
}
