#!/usr/bin/env python3
"""The library's conversions (weightbus.h, "Conversions") bit for bit against PyTorch on a GPU.

A publisher process (private broker) publishes CUDA tensors of bf16, f16 and f32 in shapes odd and even
(130x257, 1x1, 127x129, 256x384, 4097x33, 0x16, 3x50x70, 777, a 0-d scalar), each in three variants: "clean"
(64x32 tiles of random normals at several magnitudes, signed zeros, one huge value saturating its group's other
elements to FP8 subnormals and zeros, one large one, log-uniform magnitudes, FP8-subnormal and f32-subnormal
values, values whose scale underflows to 0), "special" (also a NaN, a +inf and a -inf, each in a tile of its
own) and "ties" (bf16-exact values with +-448 in every row and every 64x32 tile, so that the scales are powers
of two and round-to-nearest-even ties occur). This process reads them and converts:

  copy      Snapshot.copy_into({name: Convert(...)}) for every tensor x e4m3/e5m2 x layout (tensor, channel,
            block 128x128 as the default and 64x32; block on 2-D tensors only), f32 -> bf16, and a few into raw
            uint8 buffers with dtype= (and one at odd addresses); one target per call.
  batch     one CopyPlan holding every tensor at once, run twice (the second run on the first's resolved names).
  plan      SlicePlans whose destination fuses two parts: along dim 0 aligned on the 128-row blocks, straddling
            them, with zero pad rows, and along dim 1; the scales computed over the destination as held.
  refusals  block scales on 3-D and 1-D tensors, f16 -> bf16, a scale buffer too small, and a batch holding one
            bad target: InvalidArgumentError, nothing written.

The reference (on the GPU, in PyTorch), per group of elements sharing a scale: x = src.float(); amax = max |x|
(NaN if the group holds one); scale = where(amax == 0, 1, amax / M) with M = 448 (e4m3) or 57344 (e5m2) as a CUDA
tensor; q = (x / scale expanded to x as a tensor).clamp(-M, M).to(float8), every NaN as 0x7F; f32 -> bf16 is
x.to(bfloat16), NaN as 0x7FFF. Division is by CUDA tensors only: PyTorch divides by a CPU scalar by multiplying
with its reciprocal, which differs in the last bit. Scales compare bitwise, NaN scales by isnan. The same
formula in NumPy (FP8 rounding from a table of the codes' values) checks the PyTorch reference itself.
Each destination lies in a buffer with guard bytes either side, prefilled with bits no conversion produces;
the guards must stay, and so must every source's bytes.

    python3 tests/gpu/fp8_exact.py BUILD_DIR [--device cuda|cpu] [--only REGEX] [--verbose]

--device cpu runs the same cases on host topics (the library's host conversions) against the NumPy reference:
for machines without a GPU. Prints "PASS <case>" / "FAIL <case>: first mismatching index, values and bits"
(--verbose: PASS lines too), "RESULT fp8-exact-<group> PASS|FAIL ..." per group, "SKIP: ..." without torch, a
GPU, PyTorch's float8 dtypes or the library's conversion kernel. Exit status 1 on any failure.
"""
import argparse
import ctypes
import importlib.util
import math
import os
import re
import subprocess
import sys
import tempfile
import traceback
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = ROOT / "bindings" / "python"

SOURCE_DTYPES = ("bf16", "f16", "f32")
SHAPES = ((130, 257), (1, 1), (127, 129), (256, 384), (4097, 33), (0, 16), (3, 50, 70), (777,), ())
VARIANTS = ("clean", "special", "ties")
FP8_MAX = {"f8e4m3": 448.0, "f8e5m2": 57344.0}
TORCH_FP8 = {"f8e4m3": "float8_e4m3fn", "f8e5m2": "float8_e5m2"}
# (layout, block): block None is the library's default, 128 x 128; "block" only for 2-D destinations.
LAYOUTS = (("tensor", None), ("channel", None), ("block", None), ("block", (64, 32)))
TILE = (64, 32)  # the contents' tiles: each 64x32 block holds one kind, a 128x128 block 8 of them
GUARD = 512  # elements of guard either side of every destination and scale buffer
# What a buffer holds before a conversion: bits no conversion writes (FP8 0xFF and bf16 0xFFFF are negative
# NaNs, the library writes 0x7F and 0x7FFF; a scale is never -0.0), so an element left unwritten shows.
SENTINEL = {8: 0xFF, 16: -1, 32: -2**31}
NAN_CODE = {8: 0x7F, 16: 0x7FFF}
HUGE = {"bf16": 3e38, "f16": 60000.0, "f32": 3e38}
TINY = {"bf16": 1e-39, "f16": 1e-6, "f32": 1e-39}  # subnormal in the source's own type
MIN_SUBNORMAL = {"bf16": 2.0**-133, "f16": 2.0**-24, "f32": 2.0**-149}
WIDE_DECADES = {"bf16": 10.0, "f16": 7.0, "f32": 10.0}
CLEAN_KINDS = ("normal", "zero", "huge", "wide", "tiny", "large", "underflow", "small", "big")
SPECIAL_KINDS = ("nan", "inf", "normal", "ninf", "huge", "zero", "wide", "tiny")


def shape_text(shape):
    return "x".join(map(str, shape)) if shape else "scalar"


def tensor_name(dtype, shape, variant):
    return f"{dtype}/{shape_text(shape)}/{variant}"


def all_sources():
    return [(tensor_name(d, s, v), d, s, v) for d in SOURCE_DTYPES for s in SHAPES for v in VARIANTS]


def rows_cols(shape, layout):
    """The destination as the header sees it: [R, C]; channel: R = shape[0], C the rest; otherwise C = the last
    extent, R the rest; a 0-d tensor is [1, 1]."""
    if not shape:
        return 1, 1
    if layout == "channel":
        return shape[0], math.prod(shape[1:])
    return math.prod(shape[:-1]), shape[-1]


def block_of(block):
    return tuple(block) if block else (128, 128)


def scale_count(rows, cols, layout, block):
    if layout == "tensor":
        return 1
    if layout == "channel":
        return rows
    br, bc = block_of(block)
    return -(-rows // br) * -(-cols // bc)


def torch_dtype(torch, name):
    return {"bf16": torch.bfloat16, "f16": torch.float16, "f32": torch.float32}[name]


def int_view(torch, t):
    """The tensor's bits as integers of its element size (uint8 for FP8)."""
    kind = {1: torch.uint8, 2: torch.int16, 4: torch.int32}[t.element_size()]
    return t.reshape(-1).view(kind)


# The sources --------------------------------------------------------------------------------------------------

def source(torch, dtype, shape, variant):
    """The contents of one published tensor, on the CPU, the same in every process (seeded from its name)."""
    seed = zlib.crc32(tensor_name(dtype, shape, variant).encode())
    gen = torch.Generator().manual_seed(seed)
    rows, cols = rows_cols(shape, "tensor")
    x = torch.randn(rows, cols, generator=gen)
    if variant == "ties":
        x = (x * 8).to(torch.bfloat16).float()  # 8 significant bits: exact in every source type
        sign = torch.where(x >= 0, 1.0, -1.0)
        x[:, 0] = 448.0 * sign[:, 0]  # every row (channel) holds +-448
        x[::TILE[0], ::TILE[1]] = 448.0 * sign[::TILE[0], ::TILE[1]]  # and every 64x32 tile, so every block
    else:
        kinds = CLEAN_KINDS if variant == "clean" else SPECIAL_KINDS
        t = 0
        for r0 in range(0, rows, TILE[0]):
            for c0 in range(0, cols, TILE[1]):
                fill_tile(torch, gen, x[r0:r0 + TILE[0], c0:c0 + TILE[1]], kinds[t % len(kinds)], dtype)
                t += 1
    return x.to(torch_dtype(torch, dtype)).reshape(shape)


def fill_tile(torch, gen, tile, kind, dtype):
    """Rewrites one tile (a view) as `kind`; one element of it, at a seeded place, for the single values."""
    r = int(torch.randint(tile.shape[0], (1,), generator=gen))
    c = int(torch.randint(tile.shape[1], (1,), generator=gen))
    if kind == "small":
        tile.mul_(0.05)
    elif kind == "large":
        tile.mul_(20.0)
    elif kind == "zero":
        tile.zero_()
        tile[:, 1::2] = -0.0
    elif kind == "huge":  # the group's other elements go to FP8 zeros and subnormals
        tile[r, c] = HUGE[dtype]
    elif kind == "big":  # 448 * 64: e4m3's scale is 64, the others land near its subnormals
        tile[r, c] = 28672.0
    elif kind == "wide":
        tile.mul_(torch.pow(10.0, -WIDE_DECADES[dtype] * torch.rand(tile.shape, generator=gen)))
    elif kind == "tiny":
        tile.mul_(TINY[dtype])
    elif kind == "underflow":  # a few units of the least subnormal: f32's scale underflows to 0
        tile.copy_(torch.randint(-3, 4, tile.shape, generator=gen).float() * MIN_SUBNORMAL[dtype])
    elif kind == "nan":
        tile[r, c] = float("nan")
    elif kind == "inf":
        tile[r, c] = float("inf")
    elif kind == "ninf":
        tile[r, c] = float("-inf")
    elif kind != "normal":
        raise ValueError(kind)


# The references -----------------------------------------------------------------------------------------------

def torch_reference(torch, x, fmt, layout, block):
    """(codes, scales, torch_nan_codes): PyTorch's conversion of x (any float tensor, any device) as the header
    states it, over the [R, C] view of `layout`; codes uint8 in x's shape, scales f32 1-D; the third is the set
    of codes PyTorch itself gave NaNs (the library writes 0x7F)."""
    rows, cols = rows_cols(tuple(x.shape), layout)
    xf = x.float().reshape(rows, cols)
    count = scale_count(rows, cols, layout, block)
    if xf.numel() == 0:
        scales = torch.ones(count, dtype=torch.float32, device=x.device)  # tensor: the empty group's scale is 1
        return torch.empty(tuple(x.shape), dtype=torch.uint8, device=x.device), scales, set()
    amax = group_max(torch, xf.abs(), layout, block)
    has_nan = group_max(torch, torch.isnan(xf).float(), layout, block) > 0
    amax = torch.where(has_nan, torch.full_like(amax, float("nan")), amax)  # max over a NaN is NaN
    m = torch.full_like(amax, FP8_MAX[fmt])
    scale = torch.where(amax == 0, torch.ones_like(amax), amax / m)
    expanded = expand(torch, scale, rows, cols, layout, block).contiguous()
    q = (xf / expanded).clamp(-FP8_MAX[fmt], FP8_MAX[fmt])
    codes = to_fp8(torch, q, fmt)
    nan = torch.isnan(q)
    torch_nan = set(int(v) for v in codes[nan].unique().tolist()) if bool(nan.any()) else set()
    codes = torch.where(nan, torch.full_like(codes, NAN_CODE[8]), codes)
    return codes.reshape(tuple(x.shape)), scale, torch_nan


def group_max(torch, v, layout, block):
    """max of the non-negative v [R, C] per group, as a 1-D tensor in the scales' order."""
    rows, cols = v.shape
    if layout == "tensor":
        return v.reshape(1, -1).amax(dim=1)
    if layout == "channel":
        return v.amax(dim=1)
    br, bc = block_of(block)
    rb, cb = -(-rows // br), -(-cols // bc)
    padded = torch.zeros(rb * br, cb * bc, dtype=v.dtype, device=v.device)  # zeros change no max
    padded[:rows, :cols] = v
    return padded.view(rb, br, cb, bc).amax(dim=(1, 3)).reshape(-1)


def expand(torch, scale, rows, cols, layout, block):
    if layout == "tensor":
        return scale.expand(rows, cols)
    if layout == "channel":
        return scale[:, None].expand(rows, cols)
    br, bc = block_of(block)
    grid = scale.view(-(-rows // br), -(-cols // bc))
    return grid.repeat_interleave(br, dim=0).repeat_interleave(bc, dim=1)[:rows, :cols]


def to_fp8(torch, q, fmt):
    if q.is_cuda:
        return q.to(getattr(torch, TORCH_FP8[fmt])).view(torch.uint8)
    import numpy as np

    return torch.from_numpy(numpy_fp8(np, q.numpy(), fmt))


def torch_bf16(torch, x):
    """(bits int16, PyTorch's NaN bits): f32 -> bf16 as PyTorch converts, NaN as 0x7FFF."""
    if x.is_cuda:
        bits = x.to(torch.bfloat16).view(torch.int16)
    else:
        import numpy as np

        bits = torch.from_numpy(numpy_bf16(np, x.numpy()).view(np.int16))
    nan = torch.isnan(x)
    torch_nan = set(int(v) & 0xFFFF for v in bits[nan].unique().tolist()) if bool(nan.any()) else set()
    return torch.where(nan, torch.full_like(bits, NAN_CODE[16]), bits), torch_nan


def fp8_values(fmt):
    """The finite non-negative values of the FP8 format, by code (0 .. the code of M): ascending."""
    mant = 3 if fmt == "f8e4m3" else 2
    bias = 7 if fmt == "f8e4m3" else 15
    values = []
    for code in range(0x80):
        e, f = code >> mant, code & ((1 << mant) - 1)
        if (fmt == "f8e4m3" and code == 0x7F) or (fmt == "f8e5m2" and e == 31):
            break  # e4m3fn's NaN; e5m2's infinities and NaNs
        values.append(math.ldexp(f, 1 - bias - mant) if e == 0 else math.ldexp((1 << mant) + f, e - bias - mant))
    return values


def fp8_value(code, fmt):
    values = fp8_values(fmt)
    magnitude = values[code & 0x7F] if (code & 0x7F) < len(values) else (
        float("inf") if fmt == "f8e5m2" and (code & 0x7F) == 0x7C else float("nan"))
    return -magnitude if code & 0x80 else magnitude


def numpy_fp8(np, q, fmt):
    """Round-to-nearest-even of f32 values (already in [-M, M], or NaN) to FP8 codes: the nearest value of the
    table, ties to the even code; NaN -> 0x7F; the sign bit kept (-0.0 -> 0x80)."""
    table = np.array(fp8_values(fmt))
    q = np.asarray(q, dtype=np.float32)
    nan = np.isnan(q)
    a = np.where(nan, 0.0, np.minimum(np.abs(q.astype(np.float64)), table[-1]))
    hi = np.minimum(np.searchsorted(table, a, side="left"), len(table) - 1)
    lo = np.maximum(hi - 1, 0)
    below, above = a - table[lo], table[hi] - a
    code = np.where((above < below) | ((above == below) & (hi % 2 == 0)), hi, lo).astype(np.uint8)
    code |= np.signbit(q).astype(np.uint8) << 7
    return np.where(nan, np.uint8(NAN_CODE[8]), code).astype(np.uint8)


def numpy_bf16(np, x):
    """f32 -> bf16 bits, round to nearest even, NaN -> 0x7FFF."""
    bits = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    return np.where(np.isnan(x), np.uint16(NAN_CODE[16]), rounded)


def numpy_reference(np, x, fmt, layout, block):
    """The header's formula in NumPy float32, independent of PyTorch: (codes uint8 flat, scales f32)."""
    x = np.asarray(x, dtype=np.float32)
    shape = x.shape
    rows, cols = rows_cols(shape, layout)
    x = x.reshape(rows, cols)
    count = scale_count(rows, cols, layout, block)
    if x.size == 0:
        return np.empty(0, np.uint8), np.ones(count, np.float32)
    m = np.float32(FP8_MAX[fmt])
    with np.errstate(all="ignore"):
        if layout == "tensor":
            amax = np.max(np.abs(x)).reshape(1)  # np.max propagates NaN
            full = lambda s: np.broadcast_to(s, (rows, cols))  # noqa: E731
        elif layout == "channel":
            amax = np.max(np.abs(x), axis=1)
            full = lambda s: np.broadcast_to(s[:, None], (rows, cols))  # noqa: E731
        else:
            br, bc = block_of(block)
            rb, cb = -(-rows // br), -(-cols // bc)
            padded = np.zeros((rb * br, cb * bc), np.float32)
            padded[:rows, :cols] = np.abs(x)
            amax = padded.reshape(rb, br, cb, bc).max(axis=(1, 3)).reshape(-1)
            full = lambda s: np.repeat(np.repeat(s.reshape(rb, cb), br, 0), bc, 1)[:rows, :cols]  # noqa: E731
        scale = np.where(amax == 0, np.float32(1), (amax / m).astype(np.float32)).astype(np.float32)
        q = np.clip(x / full(scale), -m, m).astype(np.float32)
    return numpy_fp8(np, q, fmt).reshape(-1), scale


# The publisher, in a process of its own -------------------------------------------------------------------------

def publisher(socket, device):
    import torch
    import weightbus

    cuda = device != "cpu"
    sources = {name: source(torch, d, s, v) for name, d, s, v in all_sources()}
    with weightbus.connect(socket, client_name="fp8-publisher", timeout=20) as client:
        topic = client.create_topic("sources", replicas=1)
        topic.alloc({name: (tuple(t.shape), d) for (name, d, _, _), t in zip(all_sources(), sources.values())},
                    device=device if cuda else None)
        with topic.update(timeout=30) as u:
            for name, t in sources.items():
                target = u.tensor(name)
                if target.nbytes == 0:
                    continue
                if cuda:
                    torch.from_dlpack(target).copy_(t.to(device))
                else:
                    ctypes.memmove(target.data_ptr, t.data_ptr(), target.nbytes)
            u.stream = torch.cuda.current_stream() if cuda else None
        if cuda:
            torch.cuda.synchronize()
        print("ready", flush=True)
        sys.stdin.readline()  # the reader is done


# The reader: cases ---------------------------------------------------------------------------------------------

class Guarded:
    """`count` elements of `bits` width in the middle of a buffer of sentinels, `offset` elements past the
    guard (an odd address for offset 1)."""

    def __init__(self, torch, count, bits, device, offset=0):
        kind = {8: torch.uint8, 16: torch.int16, 32: torch.int32}[bits]
        self.bits, self.start, self.count = bits, GUARD + offset, count
        self.pool = torch.full((GUARD + offset + count + GUARD,), SENTINEL[bits], dtype=kind, device=device)
        self.inner = self.pool[self.start:self.start + count]

    def refill(self):
        self.pool.fill_(SENTINEL[self.bits])

    def guards_intact(self):
        s = SENTINEL[self.bits]
        return bool((self.pool[:self.start] == s).all()) and bool((self.pool[self.start + self.count:] == s).all())


class Target:
    """One destination: what it converts (x: the source as the destination holds it, for the reference), where
    it goes, and how it is checked."""

    def __init__(self, env, label, x, dtype, layout=None, block=None, raw=False, offset=0, pads=None):
        torch = env.torch
        self.env, self.label, self.x, self.dtype, self.layout, self.block = env, label, x, dtype, layout, block
        self.pads = pads  # a plan's pad elements (bool, x's shape): FP8 zeros whatever the scale (the header)
        self.shape = tuple(x.shape)
        numel = math.prod(self.shape)
        self.fp8 = dtype in FP8_MAX
        raw = raw or env.raw_only
        self.dst_buf = Guarded(torch, numel, 8 if self.fp8 else 16, env.device, offset)
        if self.fp8:
            as_type = torch.uint8 if raw else getattr(torch, TORCH_FP8[dtype])
        else:
            as_type = torch.bfloat16
        self.dst = self.dst_buf.inner.view(as_type).reshape(self.shape)
        self.dtype_arg = dtype if raw and self.fp8 else None
        self.scale_buf = self.scale = None
        if self.fp8:
            rows, cols = rows_cols(self.shape, layout)
            self.scale_buf = Guarded(torch, scale_count(rows, cols, layout, block), 32, env.device, offset)
            self.scale = self.scale_buf.inner.view(torch.float32)

    def convert(self):
        import weightbus

        if not self.fp8:
            return weightbus.Convert(self.dst)
        return weightbus.Convert(self.dst, dtype=self.dtype_arg, scale=self.scale, layout=self.layout,
                                 block=self.block)

    def dest(self, parts, concat_dim):
        """The SlicePlan destination dict of this target."""
        dest = {"dst": self.dst, "parts": parts, "concat_dim": concat_dim, "dtype": self.dtype}
        if self.fp8:
            dest.update(scale=self.scale, scale_layout=self.layout)
            if self.block is not None:
                dest["block"] = self.block
        return dest

    def refill(self):
        self.dst_buf.refill()
        if self.scale_buf is not None:
            self.scale_buf.refill()

    def untouched(self):
        """Whether neither buffer was written at all (after a refused call)."""
        s = self.dst_buf.pool
        ok = bool((s == SENTINEL[self.dst_buf.bits]).all())
        return ok and (self.scale_buf is None or bool((self.scale_buf.pool == SENTINEL[32]).all()))

    def check(self):
        """None, or what differs from the reference (the first mismatch, with its values and bits)."""
        env, torch = self.env, self.env.torch
        problems = []
        if not self.dst_buf.guards_intact():
            problems.append("bytes beside the destination were written")
        if self.scale_buf is not None and not self.scale_buf.guards_intact():
            problems.append("bytes beside the scales were written")
        got = self.dst_buf.inner
        if self.fp8:
            want, want_scales, torch_nan = torch_reference(torch, self.x, self.dtype, self.layout, self.block)
            env.note_nan(self.dtype, torch_nan)
            want = want.reshape(-1)
            env.check_reference(self, want, want_scales)
            if self.pads is not None:
                want = torch.where(self.pads.reshape(-1), torch.zeros_like(want), want)
            first = self._first_code_mismatch(got, want, want_scales)
            if first:
                problems.append(first)
            first = self._first_scale_mismatch(want_scales)
            if first:
                problems.append(first)
        else:
            want, torch_nan = torch_bf16(torch, self.x.float().reshape(-1))
            env.note_nan("bf16", torch_nan)
            env.check_reference(self, want, None)
            first = self._first_code_mismatch(got, want, None)
            if first:
                problems.append(first)
        return "; ".join(problems) or None

    def _first_code_mismatch(self, got, want, want_scales):
        torch = self.env.torch
        bad = got != want
        if not bool(bad.any()):
            return None
        i = int(bad.nonzero()[0, 0])
        where = index_of(i, self.shape)
        x = self.x.reshape(-1)[i]
        xbits = int(int_view(torch, x.reshape(1))[0]) & ((1 << (8 * x.element_size())) - 1)
        mask = 0xFF if self.fp8 else 0xFFFF
        g, w = int(got[i]) & mask, int(want[i]) & mask
        if self.fp8:
            rows, cols = rows_cols(self.shape, self.layout)
            group = group_index(i, rows, cols, self.layout, self.block)
            scale_text = f", its scale #{group} got {self.scale[group].item()!r} want {want_scales[group].item()!r}"
            values = f"got 0x{g:02x} ({fp8_value(g, self.dtype)!r}), want 0x{w:02x} ({fp8_value(w, self.dtype)!r})"
        else:
            scale_text = ""
            values = f"got 0x{g:04x}, want 0x{w:04x}"
        return (f"{int(bad.sum())} of {bad.numel()} elements differ; first at {where} (flat {i}): source "
                f"{x.item()!r} (0x{xbits:0{2 * x.element_size()}x}), {values}{scale_text}")

    def _first_scale_mismatch(self, want_scales):
        torch = self.env.torch
        got = self.scale
        same = (int_view(torch, got) == int_view(torch, want_scales)) | (torch.isnan(got) & torch.isnan(want_scales))
        if bool(same.all()):
            return None
        i = int((~same).nonzero()[0, 0])
        gbits = int(int_view(torch, got)[i]) & 0xFFFFFFFF
        wbits = int(int_view(torch, want_scales)[i]) & 0xFFFFFFFF
        unwritten = " (never written)" if gbits == SENTINEL[32] & 0xFFFFFFFF else ""
        return (f"{int((~same).sum())} of {same.numel()} scales differ; first #{i}: got {got[i].item()!r} "
                f"(0x{gbits:08x}){unwritten}, want {want_scales[i].item()!r} (0x{wbits:08x})")


def index_of(flat, shape):
    out = []
    for extent in reversed(shape):
        out.append(flat % extent)
        flat //= extent
    return tuple(reversed(out))


def group_index(flat, rows, cols, layout, block):
    r, c = divmod(flat, cols) if cols else (0, 0)
    if layout == "tensor":
        return 0
    if layout == "channel":
        return r
    br, bc = block_of(block)
    return (r // br) * -(-cols // bc) + c // bc


class Env:
    """What every case needs: torch, the device, the stream, the snapshot, the tally."""

    def __init__(self, torch, device, only, verbose):
        self.torch, self.device, self.cuda = torch, device, device != "cpu"
        self.only, self.verbose = re.compile(only) if only else None, verbose
        self.raw_only = not hasattr(torch, "float8_e4m3fn")  # an old torch on the host: uint8 + dtype=
        self.stream = torch.cuda.Stream() if self.cuda else None
        self.results = {}  # group -> [passed, failed, first failure]
        self.torch_nan = {}  # dtype -> NaN bits PyTorch gave

    def wanted(self, label):
        return self.only is None or bool(self.only.search(label))

    def record(self, group, label, problem):
        tally = self.results.setdefault(group, [0, 0, None])
        if problem is None:
            tally[0] += 1
            if self.verbose:
                print(f"PASS {label}", flush=True)
        else:
            tally[1] += 1
            tally[2] = tally[2] or label
            print(f"FAIL {label}: {problem}", flush=True)

    def note_nan(self, dtype, codes):
        if codes:
            self.torch_nan.setdefault(dtype, set()).update(codes)

    def check_reference(self, target, want, want_scales):
        """The PyTorch reference against NumPy's, so that a failure is the library's, not the reference's."""
        import numpy as np

        x = target.x.float().cpu().numpy()
        if target.fp8:
            codes, scales = numpy_reference(np, x, target.dtype, target.layout, target.block)
            same_codes = np.array_equal(codes, want.cpu().numpy())
            ws = want_scales.cpu().numpy()
            same_scales = bool(np.all((scales.view(np.uint32) == ws.view(np.uint32)) |
                                      (np.isnan(scales) & np.isnan(ws))))
        else:
            same_codes, same_scales = np.array_equal(numpy_bf16(np, x.reshape(-1)).view(np.int16),
                                                     want.cpu().numpy()), True
        self.record("reference", f"PyTorch's and NumPy's references agree: {target.label}",
                    None if same_codes and same_scales else f"their {'codes' if not same_codes else 'scales'} differ")

    def run(self, action):
        """Runs a conversion call on the stream, after the current stream's work (the refills), and waits."""
        torch = self.torch
        if self.cuda:
            self.stream.wait_stream(torch.cuda.current_stream())
            action(self.stream)
            self.stream.synchronize()
        else:
            action(None)


def targets_for(env, name, x, src_dtype):
    """(label, target maker) for every conversion of tensor `name`: every layout x FP8 type, f32 -> bf16."""
    out = []
    for fmt in FP8_MAX:
        for layout, block in LAYOUTS:
            if layout == "block" and x.dim() != 2:
                continue
            blk = f"{block[0]}x{block[1]}" if block else ""
            label = f"{name} -> {fmt} {layout}{blk}"
            out.append((label, lambda fmt=fmt, layout=layout, block=block, label=label:
                        Target(env, label, x, fmt, layout, block)))
    if src_dtype == "f32":
        label = f"{name} -> bf16"
        out.append((label, lambda label=label: Target(env, label, x, "bf16")))
    return out


def copy_cases(env, snapshot, sources):
    for name, dtype, shape, variant in all_sources():
        for label, make in targets_for(env, name, sources[name], dtype):
            label = "copy " + label
            if env.wanted(label):
                one_copy(env, snapshot, "copy", label, name, make)
    # dtype= with raw uint8 buffers (what a NumPy caller passes), and buffers at odd addresses
    for name in (tensor_name("bf16", (130, 257), "special"), tensor_name("f32", (127, 129), "clean")):
        for fmt in FP8_MAX:
            for layout, block in (("channel", None), ("block", (64, 32))):
                for raw, offset, what in ((True, 0, "raw uint8 with dtype="), (False, 1, "at odd addresses")):
                    label = f"copy {name} -> {fmt} {layout}{'64x32' if block else ''} {what}"
                    if env.wanted(label):
                        one_copy(env, snapshot, "copy", label, name, lambda fmt=fmt, layout=layout, block=block,
                                 raw=raw, offset=offset, label=label:
                                 Target(env, label, sources[name], fmt, layout, block, raw=raw, offset=offset))


def one_copy(env, snapshot, group, label, name, make):
    try:
        target = make()
        conv = target.convert()
        env.run(lambda stream: snapshot.copy_into({name: conv}, stream))
        problem = target.check()
    except Exception as e:  # reported, and the other cases still run
        problem = f"{type(e).__name__}: {e}"
    env.record(group, label, problem)


def batch_cases(env, snapshot, sources):
    """Every tensor with elements in one CopyPlan, each with another conversion (round robin), run twice."""
    import weightbus

    label = "batch: every tensor in one CopyPlan"
    if not env.wanted(label):
        return
    targets, k = {}, 0
    for name, dtype, shape, variant in all_sources():
        if math.prod(shape) == 0:
            continue  # empty ones are the single copies' (a torch tensor of no elements has data_ptr() 0)
        choices = targets_for(env, name, sources[name], dtype)
        targets[name] = choices[k % len(choices)][1]()
        k += 1
    try:
        plan = weightbus.CopyPlan({name: t.convert() for name, t in targets.items()})
    except Exception as e:
        env.record("batch", label, f"{type(e).__name__}: {e}")
        return
    for run in (1, 2):
        try:
            for t in targets.values():
                t.refill()
            env.run(lambda stream: snapshot.copy_into(plan, stream))
            problems = [f"{t.label}: {p}" for t in targets.values() for p in [t.check()] if p]
            problem = f"{len(problems)} of {len(targets)} targets wrong; " + " | ".join(problems[:3]) \
                if problems else None
        except Exception as e:
            problem = f"{type(e).__name__}: {e}"
        env.record("batch", f"{label}, run {run} ({len(targets)} targets)", problem)


FUSIONS = (
    # (what, concat_dim, parts: (variant and shape of the source, offset, extent, pad))
    ("rows 0..128 of a and 0..64 of b: blocks aligned", 0,
     [("256x384/clean", (0, 0), (128, 257), 0), ("130x257/special", (0, 0), (64, 257), 0)]),
    ("rows 5..105 of a and 30..122 of b: a 128-row block straddles them", 0,
     [("256x384/clean", (5, 100), (100, 257), 0), ("130x257/special", (30, 0), (92, 257), 0)]),
    ("97 rows of a, 31 pad rows, 64 rows of b", 0,
     [("4097x33/clean", (4000, 0), (97, 33), 31), ("4097x33/special", (0, 0), (64, 33), 0)]),
    ("along dim 1: columns 0..129 of a beside b", 1,
     [("256x384/special", (0, 0), (127, 129), 0), ("127x129/clean", (0, 0), (127, 129), 0)]),
)


def plan_cases(env, topic, snapshot, sources):
    import weightbus

    torch = env.torch
    for dtype in SOURCE_DTYPES:
        for what, dim, spec in FUSIONS:
            parts, pieces, pad_pieces = [], [], []
            for which, offset, extent, pad in spec:
                name = f"{dtype}/{which}"
                parts.append({"name": name, "offset": list(offset), "extent": list(extent), "pad": pad})
                box = sources[name][offset[0]:offset[0] + extent[0], offset[1]:offset[1] + extent[1]]
                pieces.append(box)
                pad_pieces.append(torch.zeros(box.shape, dtype=torch.bool, device=box.device))
                if pad:
                    shape = list(box.shape)
                    shape[dim] = pad
                    pieces.append(torch.zeros(shape, dtype=box.dtype, device=box.device))
                    pad_pieces.append(torch.ones(shape, dtype=torch.bool, device=box.device))
            x = torch.cat(pieces, dim=dim)
            pads = torch.cat(pad_pieces, dim=dim)
            for fmt in list(FP8_MAX) + (["bf16"] if dtype == "f32" else []):
                for layout, block in (LAYOUTS if fmt != "bf16" else [(None, None)]):
                    block = (128, 128) if layout == "block" and block is None else block  # explicit this time
                    blk = f"{block[0]}x{block[1]}" if block else ""
                    label = f"plan {dtype} {what} -> {fmt} {layout or ''}{blk}"
                    if not env.wanted(label):
                        continue
                    try:
                        target = Target(env, label, x, fmt, layout, block, pads=pads)
                        with weightbus.SlicePlan(topic, [target.dest(parts, dim)]) as plan:
                            env.run(lambda stream: plan.run(snapshot, stream))
                        problem = target.check()
                    except Exception as e:
                        problem = f"{type(e).__name__}: {e}"
                    env.record("plan", label, problem)


def refusal_cases(env, snapshot, sources):
    """Conversions the header refuses: InvalidArgumentError, and nothing written (targets are checked before
    anything is copied)."""
    import weightbus

    torch = env.torch

    def small_scale(t):  # a scale buffer one element short
        short = Guarded(torch, t.scale_buf.count - 1, 32, env.device)
        t.scale_buf, t.scale = short, short.inner.view(torch.float32)
        return t

    good_name = tensor_name("bf16", (130, 257), "clean")
    cases = [
        ("block scales on a 3-D tensor", tensor_name("bf16", (3, 50, 70), "clean"),
         lambda x: Target(env, "", x, "f8e4m3", "block", None)),
        ("block scales on a 1-D tensor", tensor_name("f32", (777,), "clean"),
         lambda x: Target(env, "", x, "f8e5m2", "block", None)),
        ("f16 -> bf16", tensor_name("f16", (130, 257), "clean"), lambda x: Target(env, "", x, "bf16")),
        ("a scale buffer one scale short", tensor_name("bf16", (256, 384), "clean"),
         lambda x: small_scale(Target(env, "", x, "f8e4m3", "block", (64, 32)))),
    ]
    for what, name, make in cases:
        label = f"refuse {what} ({name})"
        if not env.wanted(label):
            continue
        try:
            target = make(sources[name])
            good = Target(env, "", sources[good_name], "f8e4m3", "channel")
            try:
                env.run(lambda stream: snapshot.copy_into({good_name: good.convert(), name: target.convert()},
                                                          stream))
                problem = "accepted"
            except weightbus.InvalidArgumentError:
                problem = None if target.untouched() and good.untouched() else \
                    "refused, but a buffer was written (the batch's good target or the refused one)"
            except ValueError as e:  # refused by the binding before the library: fine for what it can see
                problem = None if target.untouched() and good.untouched() else f"ValueError, and written: {e}"
        except Exception as e:
            problem = f"{type(e).__name__}: {e}"
        env.record("refusals", label, problem)


# The reader: the run ---------------------------------------------------------------------------------------------

def reader(env, broker):
    import weightbus

    torch = env.torch
    me = os.path.abspath(__file__)
    pub = subprocess.Popen([sys.executable, me, "--role", "publisher", broker.socket, env.device],
                           stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        if pub.stdout.readline().strip() != "ready":
            print("FAIL: the publisher failed to set up", flush=True)
            return False
        with weightbus.connect(broker.socket, client_name="fp8-reader", timeout=20) as client:
            topic = client.open_topic("sources")
            with topic.snapshot(timeout=30) as snapshot:
                ok = read_and_check(env, topic, snapshot)
                if env.cuda:
                    torch.cuda.synchronize()
                return ok
    finally:
        if pub.poll() is None:
            pub.stdin.write("done\n")
            pub.stdin.flush()
        pub.wait(timeout=60)


def read_and_check(env, topic, snapshot):
    import weightbus

    torch = env.torch
    sources = {name: torch.from_dlpack(snapshot[name]) for name, _, _, _ in all_sources()}  # zero-copy, ordered
    before = {name: t.clone() for name, t in sources.items()}
    published = [name for name, d, s, v in all_sources()
                 if not torch.equal(int_view(torch, before[name]).cpu(), int_view(torch, source(torch, d, s, v)))]
    env.record("sources", f"the snapshot holds what the publisher wrote ({len(sources)} tensors)",
               f"differ: {published[:5]}" if published else None)

    # The library may lack the conversion kernel (built without nvcc): one probe says so, then SKIP.
    probe = Target(env, "probe", sources[tensor_name("bf16", (1, 1), "clean")], "f8e4m3", "tensor")
    try:
        env.run(lambda stream: snapshot.copy_into({tensor_name("bf16", (1, 1), "clean"): probe.convert()}, stream))
    except weightbus.NoCudaError as e:
        print(f"SKIP: libweightbus refuses GPU conversions (built without nvcc's conversion kernel?): {e}")
        return True
    except Exception:  # anything else: the cases below report it, case by case
        pass

    copy_cases(env, snapshot, sources)
    batch_cases(env, snapshot, sources)
    plan_cases(env, topic, snapshot, sources)
    refusal_cases(env, snapshot, sources)

    changed = [name for name in sources
               if not torch.equal(int_view(torch, sources[name]), int_view(torch, before[name]))]
    env.record("sources", "the sources are untouched by every conversion",
               f"changed: {changed[:5]}" if changed else None)
    del sources, before
    return True


def report(env):
    torch_nan = {d: sorted(c) for d, c in env.torch_nan.items() if set(c) != {NAN_CODE[16 if d == "bf16" else 8]}}
    if torch_nan:  # the library writes 0x7F / 0x7FFF; the comparison takes those for PyTorch's NaNs
        print("note: PyTorch's own NaN bits were " + ", ".join(f"{d}: {[hex(c) for c in v]}"
                                                               for d, v in torch_nan.items()), flush=True)
    ok = True
    for group, (passed, failed, first) in env.results.items():
        ok &= failed == 0
        status = "PASS" if failed == 0 else "FAIL"
        tail = f" first={first!r}" if failed else ""
        print(f"RESULT fp8-exact-{group} {status} {group}: passed={passed} failed={failed}{tail}", flush=True)
    return ok


def reference_only(torch, device):
    """The PyTorch reference (on `device`) against NumPy's for every source and layout, without the library:
    whether this torch's conversions are what the header states."""
    env = Env(torch, device, None, False)
    for name, dtype, shape, variant in all_sources():
        x = source(torch, dtype, shape, variant).to(device)
        for label, make in targets_for(env, name, x, dtype):
            target = make()
            if target.fp8:
                want, want_scales, torch_nan = torch_reference(torch, x, target.dtype, target.layout, target.block)
                env.check_reference(target, want.reshape(-1), want_scales)
            else:
                want, torch_nan = torch_bf16(torch, x.float().reshape(-1))
                env.check_reference(target, want, None)
            env.note_nan(target.dtype, torch_nan)
    return report(env)


def main():
    args = sys.argv[1:]
    if args and args[0] == "--role":
        publisher(args[2], args[3])
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("build", nargs="?", default="build-gpu")
    parser.add_argument("--device", default="cuda:0", help="cuda:N, or cpu for host topics (default cuda:0)")
    parser.add_argument("--only", help="run only the cases whose label matches this regular expression")
    parser.add_argument("--verbose", action="store_true", help="print PASS lines too")
    parser.add_argument("--reference-only", action="store_true",
                        help="check only the PyTorch reference against NumPy's (no library, no broker)")
    opts = parser.parse_args()
    sys.path[:0] = [str(PYTHON), str(PYTHON / "tests")]
    from broker import use_build

    use_build(Path(opts.build).resolve())
    missing = [m for m in ("torch", "numpy") if importlib.util.find_spec(m) is None]
    if missing:
        print(f"SKIP: no {', '.join(missing)} for this python3")
        return
    import torch

    cuda = opts.device != "cpu"
    if cuda and not torch.cuda.is_available():
        print("SKIP: no CUDA device")
        return
    if cuda and not hasattr(torch, "float8_e4m3fn"):
        print(f"SKIP: torch {torch.__version__} has no float8 dtypes (2.1 or later has them)")
        return
    if opts.reference_only:
        sys.exit(0 if reference_only(torch, opts.device) else 1)
    import weightbus

    if not hasattr(weightbus, "Convert"):
        print(f"FAIL: weightbus (from {weightbus.__file__}) has no Convert", flush=True)
        sys.exit(1)
    if cuda:
        torch.cuda.set_device(opts.device)
    from broker import Broker

    env = Env(torch, opts.device, opts.only, opts.verbose)
    with tempfile.TemporaryDirectory(prefix="wbfp8-") as tmp:
        broker = Broker(Path(tmp))
        try:
            finished = reader(env, broker)
        except Exception:
            traceback.print_exc()
            finished = False
        finally:
            broker.stop()
    ok = report(env) and finished
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
