#!/usr/bin/env python3
"""The conversion kernels' arithmetic on a GPU against its definition, for every input it can meet.

The kernels (libclient/cuda/convert_kernel.cu) take two shortcuts on the GPU that the header's definition
(weightbus.h, "Conversions"; the host's wb_convert_quantize) does not: they divide through the group's
reciprocal with a correction (convert_params.h, "the GPU's quotient"), and, on GPUs of compute capability 8.9
and later, round to FP8 with the hardware's conversion instruction (convert_kernel.cu's fp8_pair). This
compiles convert_kernel.cu itself (NVRTC, through CuPy, for this GPU) with two checking kernels beside it and
compares, counting differences:

  rounding   for every finite f32 (NaN and infinity excluded: the kernels never round them this way):
             fp8_pair against wb_convert_to_fp8 of the value clamped to [-M, M], e4m3 and e5m2.
  quotient   for every bf16 and every f16 group amax (finite, nonzero, with a scale the kernels divide through
             the reciprocal) and every value x of that dtype with |x| <= amax: the kernels' element (quotient,
             fp8_pair) against wb_convert_quantize (an IEEE division), e4m3 and e5m2: 2^31 pairs each.

tests/conversions checks the quotient's formula on the host for the same inputs; this checks the GPU's own
arithmetic and instruction. Prints "RESULT fp8-exhaustive PASS|FAIL ..." (and the first differences), or
"SKIP: ..." without CuPy or a GPU. Exit status 1 on a difference.

    python3 tests/gpu/fp8_exhaustive.py [BUILD_DIR]   (BUILD_DIR unused: the kernels are compiled from source)
"""
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CUDA_DIR = ROOT / "libclient" / "cuda"

CHECKS = r'''
#include "convert_kernel.cu"

// Differences: counts[0], and the first one's input (counts[1], counts[2]) and outputs (counts[3], counts[4]).
__device__ void record(unsigned long long *counts, unsigned a, unsigned b, unsigned want, unsigned got) {
  if (atomicAdd(counts, 1ull) == 0) {
    counts[1] = a; counts[2] = b; counts[3] = want; counts[4] = got;
  }
}

extern "C" __global__ void rounding(unsigned long long *counts, unsigned fp8, unsigned high) {
  const unsigned u = (high << 24) | (blockIdx.x * blockDim.x + threadIdx.x);
  const float x = wb_convert_bits_float(u);
  if ((u & 0x7f800000u) == 0x7f800000u) return;  // NaN, infinity
  const float m = wb_convert_fp8_max(fp8);
  const unsigned want = wb_convert_to_fp8(fminf(fmaxf(x, -m), m), fp8);
  const unsigned got = fp8 == WB_CONVERT_E4M3 ? convert::fp8_pair<WB_CONVERT_E4M3>(x, x)
                                              : convert::fp8_pair<WB_CONVERT_E5M2>(x, x);
  if (got != (want << 8 | want)) record(counts, u, 0, want, got);
}

extern "C" __global__ void quotient(unsigned long long *counts, unsigned fp8, unsigned f16) {
  const unsigned a = blockIdx.y + 1, xb = blockIdx.x * blockDim.x + threadIdx.x;
  const float amax = f16 ? wb_convert_from_f16(a) : wb_convert_from_bf16(a);
  const float x = f16 ? wb_convert_from_f16(xb) : wb_convert_from_bf16(xb);
  const convert::Scale s(wb_convert_scale(wb_convert_abs_bits(amax), fp8));
  const bool checked = amax <= 3.4e38f && fabsf(x) <= amax && s.direct;  // amax finite, x in its group
  if (checked) {
    const float q = wb_convert_quotient(x, s.scale, s.reciprocal);
    const unsigned got = (fp8 == WB_CONVERT_E4M3 ? convert::fp8_pair<WB_CONVERT_E4M3>(q, q)
                                                 : convert::fp8_pair<WB_CONVERT_E5M2>(q, q)) & 0xffu;
    const unsigned want = wb_convert_quantize(x, s.scale, fp8);
    if (got != want) record(counts, a, xb, want, got);
  }
  const int n = __syncthreads_count(checked);
  if (threadIdx.x == 0) {
    atomicAdd(counts + 6, (unsigned long long)n);
    if (blockIdx.x == 0 && !s.direct) atomicAdd(counts + 5, 1ull);  // a group left to the division
  }
}
'''

E4M3, E5M2 = 11, 12  # weightbus.h's dtype codes (convert_params.h's WB_CONVERT_E4M3, _E5M2)


def main():
    try:
        import cupy
    except ImportError:
        print("SKIP: CuPy is not installed (it compiles the checking kernels)")
        return 0
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            raise RuntimeError("no GPU")
    except Exception as e:  # noqa: BLE001 (CuPy raises its runtime's errors)
        print(f"SKIP: no GPU ({e})")
        return 0
    props = cupy.cuda.runtime.getDeviceProperties(0)
    cc = props["major"] * 10 + props["minor"]
    # nvcc's defaults, as the library's PTX is built: IEEE division, subnormals kept, multiply-adds contracted
    options = (f"-I{CUDA_DIR}", "-std=c++17", "-ftz=false", "-prec-div=true", "-prec-sqrt=true", "-fmad=true")
    module = cupy.RawModule(code=CHECKS, options=options)
    rounding, quotient = module.get_function("rounding"), module.get_function("quotient")
    how = "the FP8 conversion instruction" if cc >= 89 else "wb_convert_to_fp8 itself (no FP8 instruction)"
    print(f"GPU {props['name'].decode()} (compute capability {cc // 10}.{cc % 10}): fp8_pair is {how}")
    failed = 0
    summary = []
    for fp8, fp8_name in ((E4M3, "e4m3"), (E5M2, "e5m2")):
        counts = cupy.zeros(8, dtype=cupy.uint64)
        start = time.monotonic()
        for high in range(256):
            rounding((1 << 16,), (256,), (counts, cupy.uint32(fp8), cupy.uint32(high)))
        c = counts.get()
        cupy.cuda.runtime.deviceSynchronize()
        line = f"rounding {fp8_name}: every finite f32, {int(c[0])} differences ({time.monotonic() - start:.1f} s)"
        if c[0]:
            failed = 1
            line += f"; first: x bits {int(c[1]):#010x}, want {int(c[3]):#04x}, got {int(c[4]):#06x}"
        print(line)
        summary.append(f"rounding-{fp8_name} {int(c[0])}")
        for f16, src in ((0, "bf16"), (1, "f16")):
            counts = cupy.zeros(8, dtype=cupy.uint64)
            start = time.monotonic()
            amaxes = 0x7c00 - 1 if f16 else 0x7f80 - 1  # every finite nonzero magnitude
            quotient((256, amaxes), (256,), (counts, cupy.uint32(fp8), cupy.uint32(f16)))
            c = counts.get()
            line = (f"quotient {src} -> {fp8_name}: {int(c[6])} pairs, {int(c[5])} groups left to the division, "
                    f"{int(c[0])} differences ({time.monotonic() - start:.1f} s)")
            if c[0]:
                failed = 1
                line += (f"; first: amax bits {int(c[1]):#06x}, x bits {int(c[2]):#06x}, want {int(c[3]):#04x}, "
                         f"got {int(c[4]):#04x}")
            print(line)
            summary.append(f"{src}-{fp8_name} {int(c[0])}")
    print(f"RESULT fp8-exhaustive {'FAIL' if failed else 'PASS'} differences: {', '.join(summary)}")
    return failed


if __name__ == "__main__":
    sys.exit(main())
