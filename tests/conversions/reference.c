/* The conversions' independent reference (reference.h). */
#include "reference.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include <weightbus/weightbus.h>

static int mant_bits(int32_t dtype) { return dtype == WB_DTYPE_F8E4M3 ? 3 : 2; }
static int exp_bias(int32_t dtype) { return dtype == WB_DTYPE_F8E4M3 ? 7 : 15; }
static float fp8_max(int32_t dtype) { return dtype == WB_DTYPE_F8E4M3 ? 448.0f : 57344.0f; }

double ref_fp8_value(uint8_t code, int32_t dtype) {
  const int m = mant_bits(dtype), e_bits = 7 - m;
  const int sign = code >> 7, exp = (code >> m) & ((1 << e_bits) - 1), mant = code & ((1 << m) - 1);
  double v;
  if (dtype == WB_DTYPE_F8E4M3 && exp == 15 && mant == 7) return NAN; /* e4m3fn: no infinities */
  if (dtype == WB_DTYPE_F8E5M2 && exp == 31) {
    if (mant != 0) return NAN;
    v = INFINITY;
  } else if (exp == 0) {
    v = ldexp(mant, 1 - exp_bias(dtype) - m);
  } else {
    v = ldexp((1 << m) + mant, exp - exp_bias(dtype) - m);
  }
  return sign ? -v : v;
}

uint8_t ref_fp8_code(float q, int32_t dtype) {
  if (isnan(q)) return 0x7F;
  const uint8_t sign = signbit(q) ? 0x80 : 0x00;
  const double want = fabs((double)q);
  int best = -1;
  double best_distance = 0;
  for (int code = 0; code < 0x80; ++code) {
    const double v = ref_fp8_value((uint8_t)code, dtype);
    if (isnan(v) || isinf(v)) continue;
    const double distance = fabs(v - want);
    if (best < 0 || distance < best_distance || (distance == best_distance && (code & 1) == 0)) {
      best = code;
      best_distance = distance;
    }
  }
  return (uint8_t)(sign | best);
}

uint16_t ref_bf16(float x) {
  if (isnan(x)) return 0x7FFF;
  uint32_t bits;
  memcpy(&bits, &x, 4);
  if (isinf(x)) return (uint16_t)(bits >> 16);
  const uint32_t down = bits & 0xFFFF0000u, up = down + 0x10000u;
  float fd, fu;
  memcpy(&fd, &down, 4);
  memcpy(&fu, &up, 4);
  const double dd = fabs((double)x - fd), du = isinf(fd) ? INFINITY : fabs((double)fu - x);
  if (dd < du || (dd == du && ((down >> 16) & 1) == 0)) return (uint16_t)(down >> 16);
  return (uint16_t)(up >> 16);
}

float ref_widen(const void *src, uint64_t i, int32_t dtype) {
  if (dtype == WB_DTYPE_F32) return ((const float *)src)[i];
  const uint16_t h = ((const uint16_t *)src)[i];
  if (dtype == WB_DTYPE_BF16) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
  }
  const int sign = h >> 15, exp = (h >> 10) & 31, mant = h & 1023;
  double v;
  if (exp == 31) v = mant ? NAN : INFINITY;
  else if (exp == 0) v = ldexp(mant, -24);
  else v = ldexp(1024 + mant, exp - 25);
  return (float)(sign ? -v : v);
}

uint64_t ref_scale_count(uint64_t rows, uint64_t cols, uint32_t layout, uint64_t block_rows, uint64_t block_cols) {
  if (layout == WB_SCALE_TENSOR) return 1;
  if (layout == WB_SCALE_CHANNEL) return rows;
  return ((rows + block_rows - 1) / block_rows) * ((cols + block_cols - 1) / block_cols);
}

void ref_quantize(const float *x, uint64_t rows, uint64_t cols, int32_t dtype, uint32_t layout, uint64_t block_rows,
                  uint64_t block_cols, uint8_t *out, float *scales) {
  uint64_t gr = rows, gc = cols; /* WB_SCALE_TENSOR: one group */
  if (layout == WB_SCALE_CHANNEL) gr = 1;
  if (layout == WB_SCALE_BLOCK) gr = block_rows, gc = block_cols;
  if (rows == 0 || cols == 0) {
    if (layout == WB_SCALE_TENSOR) scales[0] = 1.0f;
    return;
  }
  const uint64_t groups_across = (cols + gc - 1) / gc;
  const float m = fp8_max(dtype);
  for (uint64_t r0 = 0; r0 < rows; r0 += gr) {
    for (uint64_t c0 = 0; c0 < cols; c0 += gc) {
      float amax = 0;
      int nan = 0;
      for (uint64_t r = r0; r < r0 + gr && r < rows; ++r) {
        for (uint64_t c = c0; c < c0 + gc && c < cols; ++c) {
          const float v = x[r * cols + c];
          if (isnan(v)) nan = 1;
          else if (fabsf(v) > amax) amax = fabsf(v);
        }
      }
      const float scale = nan ? NAN : amax == 0 ? 1.0f : amax / m;
      scales[(r0 / gr) * groups_across + c0 / gc] = scale;
      for (uint64_t r = r0; r < r0 + gr && r < rows; ++r) {
        for (uint64_t c = c0; c < c0 + gc && c < cols; ++c) {
          float q = x[r * cols + c] / scale;
          if (q > m) q = m;
          if (q < -m) q = -m;
          out[r * cols + c] = ref_fp8_code(q, dtype);
        }
      }
    }
  }
}

int64_t ref_compare(const char *what, const uint8_t *codes, const uint8_t *want_codes, uint64_t n_codes,
                    const float *scales, const float *want_scales, uint64_t n_scales) {
  for (uint64_t i = 0; i < n_codes; ++i) {
    if (codes[i] != want_codes[i]) {
      fprintf(stderr, "%s: code %llu is 0x%02x, the reference's 0x%02x\n", what, (unsigned long long)i, codes[i],
              want_codes[i]);
      return (int64_t)i;
    }
  }
  for (uint64_t i = 0; i < n_scales; ++i) {
    uint32_t a, b;
    memcpy(&a, &scales[i], 4);
    memcpy(&b, &want_scales[i], 4);
    if ((isnan(scales[i]) && isnan(want_scales[i])) || a == b) continue;
    fprintf(stderr, "%s: scale %llu is %a (0x%08x), the reference's %a (0x%08x)\n", what, (unsigned long long)i,
            (double)scales[i], a, (double)want_scales[i], b);
    return (int64_t)(n_codes + i);
  }
  return -1;
}
