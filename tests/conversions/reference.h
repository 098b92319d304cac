/* An independent reference of weightbus.h's "Conversions", for the host tests: the formulas of the header
 * written the slow, obvious way (each FP8 value found by searching the type's 256 codes, source values decoded
 * with ldexp), sharing nothing with libclient/cuda/convert_params.h. */
#ifndef WEIGHTBUS_TESTS_CONVERSION_REFERENCE_H
#define WEIGHTBUS_TESTS_CONVERSION_REFERENCE_H

#include <stdint.h>

/* The value of an FP8 code (NaN for NaN codes, +-inf for e5m2's infinities). */
double ref_fp8_value(uint8_t code, int32_t dtype);

/* The FP8 code of q (a value within [-M, M], or NaN): the nearest value of the same sign, ties to the even
 * code; NaN -> 0x7F. */
uint8_t ref_fp8_code(float q, int32_t dtype);

/* f32 -> bf16 bits: nearest, ties to even; NaN -> 0x7FFF. */
uint16_t ref_bf16(float x);

/* Source element bits widened to f32: bf16, f16 (decoded with ldexp) or f32. */
float ref_widen(const void *src, uint64_t i, int32_t dtype);

/* Converts x ([rows, cols], row-major, already widened) as the header says into out (rows * cols codes) and
 * scales (layout's count): layout WB_SCALE_TENSOR, CHANNEL or BLOCK (block_rows x block_cols). */
void ref_quantize(const float *x, uint64_t rows, uint64_t cols, int32_t dtype, uint32_t layout, uint64_t block_rows,
                  uint64_t block_cols, uint8_t *out, float *scales);

/* The number of scales of a [rows, cols] view in a layout. */
uint64_t ref_scale_count(uint64_t rows, uint64_t cols, uint32_t layout, uint64_t block_rows, uint64_t block_cols);

/* Compares n codes and n scales (bitwise; NaN scales by NaN-ness) with the reference's; -1 when equal, else
 * the first differing index (scales counted after codes: n_codes + i), with a description on stderr. */
int64_t ref_compare(const char *what, const uint8_t *codes, const uint8_t *want_codes, uint64_t n_codes,
                    const float *scales, const float *want_scales, uint64_t n_scales);

#endif
