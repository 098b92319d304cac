"""Conversions on the way (weightbus.h, "Conversions"), from Python: host tensors of bf16, f16 and f32 read into
f8e4m3 and f8e5m2 with their scales (per tensor, per row, per block) and f32 into bf16, by copy_into with a
Convert and by slice plans (a plain topic, a sharded one of two ranks, fused and tensor-parallel destinations),
each compared bit for bit with the NumPy reference below, written from the formats' definitions and not from
the library's code; then each error. load_module and the serving plan into FP8 parameters need torch's float8
dtypes (torch >= 2.1: the GPU host's); Debian's torch 1.13 has none and skips them, saying so."""
import contextlib
import ctypes

import numpy as np
import pytest

import weightbus

try:
    import torch
except ImportError:  # the NumPy cases run without it
    torch = None

E4M3, E5M2 = "f8e4m3", "f8e5m2"
FP8_MAX = {E4M3: 448.0, E5M2: 57344.0}
LAYOUTS = [("tensor", None), ("channel", None), ("block", None), ("block", (64, 32))]
needs_torch = pytest.mark.skipif(torch is None, reason="needs torch")
HAS_FP8 = torch is not None and hasattr(torch, "float8_e4m3fn") and hasattr(torch, "float8_e5m2")
needs_torch_fp8 = pytest.mark.skipif(not HAS_FP8, reason=f"torch {getattr(torch, '__version__', '(none)')} has no "
                                     "float8 dtypes (torch >= 2.1; the GPU host's torch runs these)")
HAS_CUDA = torch is not None and torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not HAS_CUDA, reason="no CUDA GPU here (the GPU host runs these)")
DEVICES = ["cpu", pytest.param("cuda", marks=needs_cuda)]


# The reference -------------------------------------------------------------------------------------------------

def fp8_values(fmt):
    """The value of each of the 256 codes, from the format: sign, exponent (bias 7 for e4m3fn, which has no
    infinities and NaN at S.1111.111; bias 15 for e5m2, IEEE-like: S.11111.00 infinite, S.11111.xx NaN),
    mantissa, subnormals at exponent 0."""
    mant = 3 if fmt == E4M3 else 2
    bias, exp_mask = (7, 15) if fmt == E4M3 else (15, 31)
    values = np.empty(256, np.float64)
    for code in range(256):
        exp, m = (code >> mant) & exp_mask, code & ((1 << mant) - 1)
        if fmt == E4M3 and exp == 15 and m == 7:
            v = np.nan
        elif fmt == E5M2 and exp == 31:
            v = np.inf if m == 0 else np.nan
        elif exp == 0:
            v = m / (1 << mant) * 2.0 ** (1 - bias)
        else:
            v = (1 + m / (1 << mant)) * 2.0 ** (exp - bias)
        values[code] = -v if code & 0x80 else v
    return values


def fp8_round(q, fmt):
    """float32 values (within the format's finite range, or NaN) to codes by brute force: of the finite codes of
    q's sign, the nearest (distances in float64, exact for neighbours), of two equally near the even code; NaN
    to 0x7F."""
    table = fp8_values(fmt)[:128]
    codes = np.arange(128)[np.isfinite(table)]
    magnitudes = table[np.isfinite(table)]
    flat = q.reshape(-1).astype(np.float64)
    out = np.empty(flat.size, np.uint8)
    for start in range(0, flat.size, 4096):
        chunk = flat[start:start + 4096]
        with np.errstate(invalid="ignore"):
            distance = np.abs(magnitudes[None, :] - np.abs(chunk)[:, None])
            nearest = distance == distance.min(axis=1, keepdims=True)
        pick = codes[np.argmin(np.where(nearest, codes & 1, 2), axis=1)]  # the even one where two tie
        out[start:start + 4096] = np.where(np.signbit(chunk), pick | 0x80, pick)
    out[np.isnan(flat)] = 0x7F
    return out.reshape(q.shape)


def as_matrix(x, layout):
    """The destination as the scale layouts see it: [shape[0], the rest] per channel, else [the rest, last]."""
    if x.ndim == 0:
        return x.reshape(1, 1)
    if layout == "channel":
        return x.reshape(x.shape[0], int(np.prod(x.shape[1:])))
    return x.reshape(int(np.prod(x.shape[:-1])), x.shape[-1])


def scale_count(shape, layout, block):
    rows, cols = as_matrix(np.empty(shape, np.uint8), layout).shape
    if layout == "tensor":
        return 1
    if layout == "channel":
        return rows
    block = block or (128, 128)
    return -(-rows // block[0]) * -(-cols // block[1])


def quantize(x, fmt, layout, block=None):
    """(codes, scales) of float32 `x` as the header defines them, per group of elements sharing a scale: amax
    (NaN if any element is), scale = amax / M in float32 (1.0 for amax 0), q = clamp(x / scale, -M, M)."""
    matrix = as_matrix(x, layout)
    rows, cols = matrix.shape
    group = {"tensor": (rows, cols), "channel": (1, cols), "block": block or (128, 128)}[layout]
    biggest = np.float32(FP8_MAX[fmt])
    q = np.empty_like(matrix)
    scales = [np.float32(1.0)] if layout == "tensor" and not matrix.size else []
    for r in range(0, rows, max(group[0], 1)):
        for c in range(0, cols, max(group[1], 1)):
            g = matrix[r:r + group[0], c:c + group[1]]
            amax = np.max(np.abs(g))
            scale = np.float32(1.0) if amax == 0 else np.float32(amax) / biggest
            with np.errstate(invalid="ignore", divide="ignore"):
                q[r:r + group[0], c:c + group[1]] = np.clip(g / scale, -biggest, biggest)
            scales.append(np.float32(scale))
    return fp8_round(q, fmt).reshape(x.shape), np.array(scales, np.float32)


def bf16_bits(x):
    """float32 to bf16 bits, rounded to nearest even; NaN to 0x7FFF."""
    bits = x.astype(np.float32).view(np.uint32).astype(np.uint64)
    out = ((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16).astype(np.uint16)
    out[np.isnan(x)] = 0x7FFF
    return out


def widen(source, data):
    """The published elements as float32 (exact): bf16 bits shifted into place, f16 and f32 by NumPy."""
    if source == "bf16":
        return (data.astype(np.uint32) << 16).view(np.float32)
    return data.astype(np.float32)


def test_the_reference_knows_the_formats():
    e4m3, e5m2 = fp8_values(E4M3), fp8_values(E5M2)
    assert np.nanmax(e4m3) == 448 and e4m3[0x7E] == 448 and e4m3[0x01] == 2.0 ** -9 and e4m3[0x08] == 2.0 ** -6
    assert np.isnan(e4m3).sum() == 2 and not np.isinf(e4m3).any()
    assert np.nanmax(e5m2[np.isfinite(e5m2)]) == 57344 and e5m2[0x7C] == np.inf and e5m2[0x01] == 2.0 ** -16
    assert np.isnan(e5m2).sum() == 6 and np.isinf(e5m2).sum() == 2
    # ties go to the even code: 1.0625 lies halfway between 1.0 (0x38) and 1.125 (0x39) in e4m3
    assert list(fp8_round(np.array([1.0625, -1.0625, 1.1875, 0.0, -0.0, np.nan], np.float32), E4M3)) == \
        [0x38, 0xB8, 0x3A, 0x00, 0x80, 0x7F]
    assert list(bf16_bits(np.array([1.0, np.inf, np.nan, 3.4028235e38], np.float32))) == \
        [0x3F80, 0x7F80, 0x7FFF, 0x7F80]
    ties = np.array([0x3F808000, 0x3F818000], np.uint32).view(np.float32)  # halfway: down to even, up to even
    assert list(bf16_bits(ties)) == [0x3F80, 0x3F82]


# Data ----------------------------------------------------------------------------------------------------------

def source_data(source, shape, seed, specials=False):
    """Elements of dtype `source` (bf16 as uint16 bits): values over six orders of magnitude, a zero block of
    64 x 32 (with negative zeros) and a zero row, an outlier; with `specials`, NaN, inf and -inf in different
    rows and blocks."""
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal(shape) * 10.0 ** rng.uniform(-3, 3, shape)).astype(np.float32)
    if len(shape) == 2 and shape[0] > 64 and shape[1] > 32:
        x[:64, :32] = 0
        x[:64:2, :32:3] = -0.0
        x[66, :] = 0
        x[70, 40] = 3.0e4 if source == "f16" else 1.0e6
    if specials:
        x[3, 7], x[100, 200], x[120, 10] = np.nan, np.inf, -np.inf
    if source == "bf16":
        return bf16_bits(x)
    return x.astype(np.float16 if source == "f16" else np.float32)


SHAPES = {"w": (130, 257), "one": (1, 1), "empty": (0, 5), "cube": (3, 4, 5), "special": (130, 257)}


def tensors_of(source, layout):
    """The test's tensors by name (no 3-D one for blocks, which need 2-D)."""
    return {name: source_data(source, shape, seed, specials=name == "special")
            for seed, (name, shape) in enumerate(SHAPES.items()) if not (layout == "block" and len(shape) == 3)}


def write(tensor, data):
    """Copies `data`'s bytes into a writable weightbus Tensor (bf16 has no NumPy dtype: bytes for every dtype)."""
    assert tensor.nbytes == data.nbytes
    if data.nbytes:
        ctypes.memmove(tensor.data_ptr, np.ascontiguousarray(data).ctypes.data, data.nbytes)


def publish(client, source, tensors, name="src"):
    """A plain topic with `tensors` (of dtype `source`) as version 1; returns a reader's handle of it."""
    topic = client.create_topic(name)
    topic.alloc({n: (data.shape, source) for n, data in tensors.items()})
    with topic.update() as u:
        for n, data in tensors.items():
            write(u[n], data)
    return client.open_topic(name)


def scale_buffer(shape, layout, block):
    return np.full(scale_count(shape, layout, block), -7.0, np.float32)  # -7: never a scale, so seen if unwritten


def assert_same(what, codes, scales, want_codes, want_scales):
    """Codes equal bit for bit; scales too, or both NaN."""
    assert codes.shape == want_codes.shape, what
    got, want = codes.reshape(-1), want_codes.reshape(-1)
    wrong = np.flatnonzero(got != want)
    assert not wrong.size, f"{what}: {wrong.size} codes differ, first at {wrong[0]}: 0x{got[wrong[0]]:02x}, the " \
                           f"reference's 0x{want[wrong[0]]:02x}"
    assert scales.shape == want_scales.shape, what
    both_nan = np.isnan(scales) & np.isnan(want_scales)
    differ = (scales.view(np.uint32) != want_scales.view(np.uint32)) & ~both_nan
    assert not differ.any(), f"{what}: scales {np.flatnonzero(differ)[:5]} are {scales[differ][:5]}, the " \
                             f"reference's {want_scales[differ][:5]}"


# FP8 from a plain topic: copy-into and slice plans ---------------------------------------------------------------

@pytest.mark.parametrize("layout,block", LAYOUTS)
@pytest.mark.parametrize("fmt", [E4M3, E5M2])
@pytest.mark.parametrize("source", ["bf16", "f16", "f32"])
def test_fp8_conversions_match_the_reference(client, source, fmt, layout, block):
    tensors = tensors_of(source, layout)
    reader = publish(client, source, tensors)
    want = {n: quantize(widen(source, data), fmt, layout, block) for n, data in tensors.items()}

    copies = {n: converting(data.shape, fmt, layout, block) for n, data in tensors.items()}
    with reader.snapshot() as s:
        s.copy_into(copies)
    for n, convert in copies.items():
        assert_same(f"copy_into {n}", convert.dst, convert.scale, *want[n])

    dests, buffers = [], {}
    for n, data in tensors.items():
        dst, scale = np.full(data.shape, 0xAA, np.uint8), scale_buffer(data.shape, layout, block)
        buffers[n] = (dst, scale)
        dest = {"dst": dst, "dtype": fmt, "scale": scale, "scale_layout": layout,
                "parts": [{"name": n, "extent": list(data.shape)}]}
        dests.append(dict(dest, block=block) if block else dest)
    # A tensor-parallel rank's rows of w: its scales are over those rows as the reader holds them.
    rows = np.full((65, 257), 0xAA, np.uint8), scale_buffer((65, 257), layout, block)
    dests.append({"dst": rows[0], "dtype": fmt, "scale": rows[1], "scale_layout": layout, "block": block,
                  "parts": [{"name": "w", "offset": [65, 0], "extent": [65, 257]}]})
    with reader.slice_plan(dests) as plan, reader.snapshot() as s:
        plan.run(s)
    for n, (dst, scale) in buffers.items():
        assert_same(f"plan {n}", dst, scale, *want[n])
    assert_same("plan w[65:]", *rows, *quantize(widen(source, tensors["w"])[65:], fmt, layout, block))


def converting(shape, fmt, layout, block):
    """A Convert into a fresh uint8 array of `shape` and a scale buffer for the layout, both pre-filled."""
    return weightbus.Convert(np.full(shape, 0xAA, np.uint8), dtype=fmt, scale=scale_buffer(shape, layout, block),
                             layout=layout, block=block)


def test_a_copy_plan_converts_every_version_into_the_same_buffers(client):
    topic = client.create_topic("model")
    topic.alloc({"w": ((130, 257), "f32")})
    reader = client.open_topic("model")
    convert = converting((130, 257), E4M3, "block", None)
    plan = weightbus.CopyPlan({"w": convert})
    del convert  # the plan keeps the buffers, the scales' too
    for seed in (1, 2):
        data = source_data("f32", (130, 257), seed)
        topic.publish({"w": data})
        with reader.snapshot() as s:
            s.copy_into(plan)
        held = plan._buffers["w"]
        assert_same(f"version {seed}", held.dst, held.scale, *quantize(data, E4M3, "block"))


# bf16 from f32 ---------------------------------------------------------------------------------------------------

def f32_for_bf16(shape, seed):
    """f32 values that bf16 rounding has to get right: ties (low half exactly 0x8000, after even and odd upper
    halves), subnormals, the largest floats (which round to inf), NaN with payloads, infinities, signed zeros."""
    rng = np.random.default_rng(seed)
    bits = rng.integers(0, 2 ** 32, size=shape, dtype=np.uint64).astype(np.uint32)
    flat = bits.reshape(-1)
    special = [0x3F808000, 0x3F818000, 0xBF808000, 0x00008000, 0x00018000, 0x7F7FFFFF, 0xFF7FFFFF, 0x7F7F8000,
               0x7FC00001, 0xFF800001, 0x7F800000, 0xFF800000, 0x00000000, 0x80000000, 0x00000001]
    flat[:min(len(special), flat.size)] = special[:flat.size]
    return bits.view(np.float32)


def test_f32_to_bf16_matches_the_reference(client):
    tensors = {"w": f32_for_bf16((130, 257), 1), "one": f32_for_bf16((1, 1), 2), "empty": f32_for_bf16((0, 5), 3),
               "cube": f32_for_bf16((3, 4, 5), 4)}
    reader = publish(client, "f32", tensors)
    copies = {n: weightbus.Convert(np.zeros(t.shape, np.uint16), dtype="bf16") for n, t in tensors.items()}
    planned = {n: np.zeros(t.shape, np.uint16) for n, t in tensors.items()}
    dests = [{"dst": planned[n], "dtype": "bf16", "parts": [{"name": n, "extent": list(t.shape)}]}
             for n, t in tensors.items()]
    with reader.slice_plan(dests) as plan, reader.snapshot() as s:
        s.copy_into(copies)
        plan.run(s)
    for n, data in tensors.items():
        assert np.array_equal(copies[n].dst, bf16_bits(data)), n
        assert np.array_equal(planned[n], bf16_bits(data)), n


@needs_torch
def test_f32_to_bf16_into_torch_bfloat16_tensors(client):
    data = f32_for_bf16((33, 70), 5)
    reader = publish(client, "f32", {"w": data})
    into, planned = torch.zeros(33, 70, dtype=torch.bfloat16), torch.zeros(33, 70, dtype=torch.bfloat16)
    convert = weightbus.Convert(into)
    assert (convert.dtype, convert.scale, convert.layout, convert.block) == ("bf16", None, None, None)
    with reader.slice_plan([{"dst": planned, "parts": [{"name": "w", "extent": [33, 70]}]}]) as plan, \
            reader.snapshot() as s:
        s.copy_into({"w": convert})  # the tensor's dtype says bf16
        plan.run(s)                  # the dest's dtype is its tensor's: it converts where the parts are f32
    for result in (into, planned):
        assert np.array_equal(result.view(torch.int16).numpy().view(np.uint16), bf16_bits(data))


# Sharded topics: two ranks' dim-0 shards, fused and tensor-parallel destinations ---------------------------------

LOGICAL = {"w": (130, 257), "q": (96, 64), "k": (32, 64)}


def publish_sharded(stack, broker, source, data):
    """Topic "sharded" of two ranks, each holding rows [r * n / 2, (r + 1) * n / 2) of every tensor in `data`
    (dtype `source`), version 1 published by ranks whose clients `stack` (an ExitStack) closes; returns a
    reader's handle of it."""
    clients = [stack.enter_context(broker.connect(f"rank{r}")) for r in range(2)]
    ranks = [c.create_rank("sharded", r, 2) for r, c in enumerate(clients)]
    for r, topic in enumerate(ranks):
        topic.alloc_shards([{"name": n, "dtype": source, "logical_shape": t.shape,
                             "offset": (r * t.shape[0] // 2, 0), "extent": (t.shape[0] // 2, t.shape[1])}
                            for n, t in data.items()])
    for topic in ranks:
        topic.seal_rank(timeout=5)
    for r, topic in enumerate(ranks):
        with topic.update() as u:
            for n, t in data.items():
                half = t.shape[0] // 2
                write(u.shard(n), t[r * half:(r + 1) * half])
    return stack.enter_context(broker.connect("reader")).open_topic("sharded")


@pytest.mark.parametrize("layout,block", LAYOUTS)
@pytest.mark.parametrize("fmt", [E4M3, E5M2])
def test_sharded_topic_converts_whole_fused_and_sliced_destinations(broker, fmt, layout, block):
    data = {n: source_data("bf16", shape, seed) for seed, (n, shape) in enumerate(LOGICAL.items())}
    with contextlib.ExitStack() as stack:
        reader = publish_sharded(stack, broker, "bf16", data)
        x = {n: widen("bf16", t) for n, t in data.items()}
        wanted = {  # destination: (shape, parts, the float32 values it holds)
            "w whole": ((130, 257), [{"name": "w", "extent": [130, 257]}], x["w"]),
            "w across the shards": ((40, 257), [{"name": "w", "offset": [45, 0], "extent": [40, 257]}],
                                    x["w"][45:85]),
            "qk fused": ((128, 64), [{"name": "q", "extent": [96, 64]}, {"name": "k", "extent": [32, 64]}],
                         np.concatenate([x["q"], x["k"]])),
            "qk of TP rank 1 of 2": ((64, 64), [{"name": "q", "offset": [48, 0], "extent": [48, 64]},
                                                {"name": "k", "offset": [16, 0], "extent": [16, 64]}],
                                     np.concatenate([x["q"][48:], x["k"][16:]])),
        }
        buffers = {what: (np.full(shape, 0xAA, np.uint8), scale_buffer(shape, layout, block))
                   for what, (shape, _, _) in wanted.items()}
        dests = [{"dst": buffers[what][0], "dtype": fmt, "scale": buffers[what][1], "scale_layout": layout,
                  "block": block, "parts": parts} for what, (_, parts, _) in wanted.items()]
        with reader.slice_plan(dests) as plan, reader.snapshot() as s:
            plan.run(s)
        for what, (_, _, values) in wanted.items():
            assert_same(what, *buffers[what], *quantize(values, fmt, layout, block))


def test_sharded_f32_topic_converts_into_bf16(broker):
    data = {"w": f32_for_bf16((130, 257), 7)}
    with contextlib.ExitStack() as stack:
        reader = publish_sharded(stack, broker, "f32", data)
        whole, rows = np.zeros((130, 257), np.uint16), np.zeros((40, 257), np.uint16)
        dests = [{"dst": whole, "dtype": "bf16", "parts": [{"name": "w", "extent": [130, 257]}]},
                 {"dst": rows, "dtype": "bf16", "parts": [{"name": "w", "offset": [45, 0], "extent": [40, 257]}]}]
        with reader.slice_plan(dests) as plan, reader.snapshot() as s:
            plan.run(s)
        assert np.array_equal(whole, bf16_bits(data["w"]))
        assert np.array_equal(rows, bf16_bits(data["w"][45:85]))


# What the binding holds and knows ---------------------------------------------------------------------------------

def test_plans_keep_the_scale_buffers_alive_until_closed(client):
    import gc
    import weakref

    reader = publish(client, "f32", {"w": source_data("f32", (4, 8), 1)})
    scale = np.zeros(4, np.float32)
    seen = weakref.ref(scale)
    plan = reader.slice_plan([{"dst": np.zeros((4, 8), np.uint8), "dtype": E5M2, "scale": scale,
                               "scale_layout": "channel", "parts": [{"name": "w", "extent": [4, 8]}]}])
    copies = weightbus.CopyPlan({"w": converting((4, 8), E4M3, "tensor", None)})
    held = weakref.ref(copies._buffers["w"].scale)
    del scale
    gc.collect()
    assert seen() is not None and held() is not None
    with reader.snapshot() as s:
        plan.run(s)
        s.copy_into(copies)
    assert seen()[0] > 0 and held()[0] > 0
    plan.close()
    del copies
    gc.collect()
    assert seen() is None and held() is None


def test_converts_lists_the_headers_pairs():
    from weightbus.convert import converts

    pairs = {(a, b) for a in weightbus.dtypes.names() for b in weightbus.dtypes.names() if converts(a, b)}
    assert pairs == {(s, d) for s in ("bf16", "f16", "f32") for d in (E4M3, E5M2)} | {("f32", "bf16")}


# Errors ----------------------------------------------------------------------------------------------------------

def fp8_convert(shape, **changes):
    args = dict(dtype=E4M3, scale=np.zeros(1, np.float32), layout="tensor")
    args.update(changes)
    return weightbus.Convert(np.zeros(shape, np.uint8), **args)


def test_convert_refuses_what_it_can_check_itself():
    u8, scale = np.zeros((4, 8), np.uint8), np.zeros(1, np.float32)
    cases = [
        (lambda: weightbus.Convert(u8, dtype=E4M3), "needs scale="),
        (lambda: weightbus.Convert(u8, dtype=E4M3, layout="tensor"), "without a scale buffer"),
        (lambda: weightbus.Convert(u8, dtype=E4M3, scale=scale), "needs layout"),
        (lambda: weightbus.Convert(u8, dtype=E4M3, scale=scale, layout="row"), "needs layout"),
        (lambda: weightbus.Convert(u8, dtype=E4M3, scale=scale, layout="tensor", block=(64, 64)), "is for layout"),
        (lambda: weightbus.Convert(u8, dtype=E4M3, block=(64, 64)), "without a scale buffer"),
        (lambda: weightbus.Convert(u8, dtype=E4M3, scale=scale, layout="block", block=(0, 64)), "two positive"),
        (lambda: weightbus.Convert(u8, dtype=E4M3, scale=scale, layout="block", block=(64,)), "two positive"),
        (lambda: weightbus.Convert(u8, scale=scale, layout="tensor"), "does not say which dtype"),
        (lambda: weightbus.Convert(np.zeros(4, np.uint16), dtype="bf16", scale=scale, layout="tensor"),
         "goes with an FP8 dtype"),
        (lambda: weightbus.Convert(u8, dtype=E4M3, scale=np.zeros(1, np.float64), layout="tensor"), "float32"),
        (lambda: weightbus.Convert(u8, dtype=E4M3, scale=np.zeros(4, np.float32)[::2], layout="tensor"),
         "scale buffer must be contiguous"),
        (lambda: weightbus.Convert(u8[:, ::2], dtype=E4M3, scale=scale, layout="tensor"), "dst must be contiguous"),
        (lambda: weightbus.Convert(np.zeros((4, 8), np.float32), dtype="bf16"), "holds f32, not bf16"),
        (lambda: weightbus.Convert(np.zeros((4, 8), np.uint16), dtype=E4M3, scale=scale, layout="tensor"),
         "holds u16, not f8e4m3"),
        (lambda: weightbus.Convert(u8, dtype="f9"), "unknown dtype"),
    ]
    for make, message in cases:
        with pytest.raises(ValueError, match=message):
            make()
    read_only = np.zeros((4, 8), np.uint8)
    read_only.flags.writeable = False
    with pytest.raises(ValueError, match="writable"):
        weightbus.Convert(read_only, dtype=E4M3, scale=scale, layout="tensor")
    with pytest.raises(TypeError, match="torch tensor or a NumPy array"):
        weightbus.Convert([0, 0], dtype=E4M3, scale=scale, layout="tensor")
    with pytest.raises(TypeError, match="torch tensor or a NumPy array"):
        weightbus.Convert(u8, dtype=E4M3, scale=[1.0], layout="tensor")


def test_convert_is_frozen_and_says_what_it_asks():
    convert = fp8_convert((4, 8), dtype="f8e5m2", scale=np.zeros(1, np.float32), layout="block", block=[64, 32])
    assert (convert.dtype, convert.layout, convert.block) == ("f8e5m2", "block", (64, 32))
    assert repr(convert) == "<weightbus.Convert to f8e5m2, layout='block', block=(64, 32)>"
    with pytest.raises(AttributeError, match="frozen"):
        convert.dtype = "f8e4m3"
    with pytest.raises(AttributeError, match="frozen"):
        del convert.scale


def test_the_library_refuses_what_does_not_fit(client):
    reader = publish(client, "bf16", {"w": source_data("bf16", (130, 257), 1),
                                      "cube": source_data("bf16", (3, 4, 5), 2)})
    ints = publish(client, "i32", {"i": np.arange(12, dtype=np.int32).reshape(3, 4)}, name="ints")
    viewed = client.create_topic("viewed")
    viewed.alloc({"w": ((4, 8), "f32")})
    viewed.view("column", "w", "f32", (4,), strides=(8,))
    viewed.publish({"w": np.ones((4, 8), np.float32)})
    cases = [
        (viewed, {"column": fp8_convert((4,))}, "WB_E_SHAPE"),                            # a strided view
        (reader, {"w": fp8_convert((130, 257), layout="channel", scale=np.zeros(129, np.float32))}, "WB_E_SIZE"),
        (reader, {"w": fp8_convert((130, 256))}, "WB_E_SIZE"),
        (reader, {"cube": fp8_convert((3, 4, 5), layout="block")}, "WB_E_SHAPE"),
        (reader, {"w": weightbus.Convert(np.zeros((130, 257), np.float16))}, "WB_E_DTYPE"),  # bf16 -> f16
        (ints, {"i": fp8_convert((3, 4))}, "WB_E_DTYPE"),                                  # i32 -> f8e4m3
    ]
    for topic, targets, code in cases:
        with topic.snapshot() as s:
            with pytest.raises(weightbus.InvalidArgumentError, match=code) as raised:
                s.copy_into(targets)
        assert raised.value.code_name == code


def test_slice_plans_refuse_what_does_not_fit(client):
    reader = publish(client, "bf16", {"w": source_data("bf16", (130, 257), 1),
                                      "cube": source_data("bf16", (3, 4, 5), 2)})

    def dest(shape, name="w", **keys):
        return dict({"dst": np.zeros(shape, np.uint8), "dtype": E4M3, "scale": np.zeros(1, np.float32),
                     "scale_layout": "tensor", "parts": [{"name": name, "extent": list(shape)}]}, **keys)

    library = [
        (dest((130, 257), scale=np.zeros(129, np.float32), scale_layout="channel"), "WB_E_SIZE"),
        (dest((3, 4, 5), "cube", scale_layout="block"), "WB_E_SHAPE"),
        ({"dst": np.zeros((130, 257), np.float16), "parts": [{"name": "w", "extent": [130, 257]}]}, "WB_E_DTYPE"),
        (dest((130, 257), scale=None, scale_layout=None), "WB_E_DTYPE"),  # FP8 from bf16 without scales
        (dict(dest((65, 257)), dst=np.zeros((65, 514), np.uint8)[:, :257],
              parts=[{"name": "w", "extent": [65, 257]}]), "WB_E_SHAPE"),  # strided, converting
    ]
    for d, code in library:
        with pytest.raises(weightbus.InvalidArgumentError, match=code) as raised:
            reader.slice_plan([d])
        assert raised.value.code_name == code
    ours = [
        (dest((130, 257), scale_layout=None), "without a layout|needs layout"),
        (dest((130, 257), scale=None), "without a scale buffer"),
        (dest((130, 257), block=(64, 64)), "is for layout"),
        (dest((130, 257), scales=None), "unknown keys \\['scales'\\]"),
        ({"parts": []}, "no 'dst'"),
        (dest((130, 257), dtype="bf16"), "holds u8, not bf16"),
    ]
    for d, message in ours:
        with pytest.raises(ValueError, match=message):
            reader.slice_plan([d])


# weightbus.torch and weightbus.serving ---------------------------------------------------------------------------

@needs_torch
def test_load_module_rounds_an_f32_topic_into_bf16_parameters(client):
    data = {"0.weight": f32_for_bf16((16, 8), 1), "0.bias": f32_for_bf16((16,), 2)}
    topic = client.create_topic("policy")
    topic.alloc({n: (t.shape, "f32") for n, t in data.items()})
    topic.publish(data)
    module = torch.nn.Sequential(torch.nn.Linear(8, 16)).to(torch.bfloat16)
    from weightbus.torch import load_module

    assert load_module(client.open_topic("policy"), module) == 1
    for name, param in module.named_parameters():
        assert np.array_equal(param.detach().view(torch.int16).numpy().view(np.uint16), bf16_bits(data[name])), name
    wrong = torch.nn.Sequential(torch.nn.Linear(8, 16)).to(torch.float16)  # f32 -> f16 is no conversion
    with pytest.raises(weightbus.InvalidArgumentError, match="converts bf16, f16 and f32 into FP8"):
        load_module(client.open_topic("policy"), wrong)
    with pytest.raises(ValueError, match="fp8_block"):
        load_module(client.open_topic("policy"), module, fp8_block=(128, 0))


@needs_torch
def test_the_serving_plan_rounds_an_f32_trainer_into_a_bf16_server(broker):
    from weightbus import serving, vllm
    from test_sharded import CONFIG, trainer_model, vllm_expected

    full = trainer_model()
    try:
        vllm.WeightbusWeightTransferEngine.trainer_send_weights(iter(full.items()),
                                                                {"topic": "policy", "socket": broker.socket})
        want = vllm_expected(full, 1, 2)
        with broker.connect("server") as client:
            receiver = serving.ModelReceiver(client.open_topic("policy"), "plan", 1, 2, CONFIG)
            model = served_model({n: t.to(torch.bfloat16) for n, t in want.items()})
            assert receiver.receive(1, model) == 1
            for name, param in model.named_parameters():
                bits = param.detach().view(torch.int16).numpy().view(np.uint16)
                assert np.array_equal(bits, bf16_bits(want[name].numpy())), name
            receiver.close()
    finally:
        serving.close_publishers()


def served_model(tensors):
    """A module holding `tensors` as parameters under their dotted names."""
    model = torch.nn.Module()
    for name, tensor in tensors.items():
        *path, leaf = name.split(".")
        owner = model
        for part in path:
            if part not in owner._modules:
                owner.add_module(part, torch.nn.Module())
            owner = owner._modules[part]
        owner.register_parameter(leaf, torch.nn.Parameter(torch.zeros_like(tensor), requires_grad=False))
    return model


@needs_torch
def test_the_fp8_block_comes_from_the_model_config():
    from weightbus.serving import _config_block

    assert _config_block({"quantization_config": {"weight_block_size": [64, 32]}}) == (64, 32)
    assert _config_block(type("Config", (), {"quantization_config": {"weight_block_size": [32, 16]}})()) == (32, 16)
    assert _config_block({"hidden_size": 16}) == (128, 128)
    with pytest.raises(ValueError, match="fp8_block"):
        _config_block({"quantization_config": {"weight_block_size": [64, -1]}})


@needs_torch
def test_a_receiver_takes_an_fp8_block_of_two_positive_integers(client):
    from weightbus.serving import ModelReceiver

    topic = client.create_topic("policy")
    assert ModelReceiver(topic, fp8_block=[64, 32]).fp8_block == (64, 32)
    assert ModelReceiver(topic).fp8_block is None  # the config's, when a plan is made
    for bad in ((128,), (128, 0), "128x128", (1.5, 2)):
        with pytest.raises(ValueError, match="fp8_block"):
            ModelReceiver(topic, fp8_block=bad)


def float8(fmt):
    return getattr(torch, "float8_e4m3fn" if fmt == E4M3 else "float8_e5m2")


def fp8_bits(tensor):
    return tensor.detach().cpu().view(torch.uint8).numpy()


def host(tensor):
    return tensor.detach().cpu().numpy()


def write_torch(tensor, bits):
    """Copies uint16 bits into a bf16 weightbus Tensor of the host or a GPU, through torch."""
    torch.from_dlpack(tensor).view(torch.int16).copy_(torch.from_numpy(bits.view(np.int16)))
    if tensor.device != "cpu":
        torch.cuda.synchronize()  # published without a stream: the bytes must be there first


@needs_cuda
@pytest.mark.parametrize("layout,block", LAYOUTS)
@pytest.mark.parametrize("fmt", [E4M3, E5M2])
def test_cuda_destinations_convert_on_their_gpu(client, fmt, layout, block):
    """A topic on the GPU read into GPU buffers (uint8 tensors: any torch) by copy_into and a plan, on a stream:
    the conversion kernel's bits are the reference's too."""
    tensors = {"w": source_data("bf16", (130, 257), 1), "special": source_data("bf16", (130, 257), 2, True)}
    topic = client.create_topic("gpu")
    topic.alloc({n: (t.shape, "bf16") for n, t in tensors.items()}, device="cuda:0")
    with topic.update() as u:
        for n, t in tensors.items():
            write_torch(u[n], t)
    reader = client.open_topic("gpu")

    def buffers(shape):
        return (torch.full(shape, 0xAA, dtype=torch.uint8, device="cuda"),
                torch.full((scale_count(shape, layout, block),), -7.0, device="cuda"))

    copies = {n: buffers(t.shape) for n, t in tensors.items()}
    planned = {n: buffers(t.shape) for n, t in tensors.items()}
    dests = [{"dst": dst, "dtype": fmt, "scale": scale, "scale_layout": layout, "block": block,
              "parts": [{"name": n, "extent": list(tensors[n].shape)}]} for n, (dst, scale) in planned.items()]
    stream = torch.cuda.Stream()
    with reader.slice_plan(dests) as plan, reader.snapshot() as s:
        s.copy_into({n: weightbus.Convert(dst, dtype=fmt, scale=scale, layout=layout, block=block)
                     for n, (dst, scale) in copies.items()}, stream)
        plan.run(s, stream)
        stream.synchronize()
    for n, t in tensors.items():
        want = quantize(widen("bf16", t), fmt, layout, block)
        assert_same(f"copy_into {n}", host(copies[n][0]), host(copies[n][1]), *want)
        assert_same(f"plan {n}", host(planned[n][0]), host(planned[n][1]), *want)
    with pytest.raises(ValueError, match="must lie where dst does \\(cuda:0\\), not on the host"):
        weightbus.Convert(copies["w"][0], dtype=fmt, scale=np.zeros(1, np.float32), layout="tensor")


@needs_torch_fp8
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("fmt", [E4M3, E5M2])
def test_load_module_quantizes_into_fp8_parameters_and_their_scales(client, fmt, device):
    """Three layers, one per scale parameter's kind: blocks (weight_scale_inv), one per row and one per tensor
    (weight_scale); the bias stays bf16. The topic and the module on the host, or both on the GPU."""
    shapes = {"block.weight": (130, 257), "row.weight": (40, 24), "whole.weight": (8, 8), "whole.bias": (8,)}
    data = {n: source_data("bf16", shape, seed) for seed, (n, shape) in enumerate(shapes.items())}
    topic = client.create_topic("policy")
    topic.alloc({n: (t.shape, "bf16") for n, t in data.items()}, device="cuda:0" if device == "cuda" else None)
    with topic.update() as u:
        for n, t in data.items():
            write_torch(u[n], t)
    params = {n: torch.zeros(t.shape, dtype=float8(fmt)) for n, t in data.items() if n.endswith("weight")}
    params.update({"block.weight_scale_inv": torch.zeros(3, 5), "row.weight_scale": torch.zeros(40, 1),
                   "whole.weight_scale": torch.zeros(()), "whole.bias": torch.zeros(8, dtype=torch.bfloat16)})
    model = served_model(params).to(device)
    from weightbus.torch import load_module

    assert load_module(client.open_topic("policy"), model, fp8_block=(64, 64)) == 1
    got = dict(model.named_parameters())
    for name, layout, block in (("block", "block", (64, 64)), ("row", "channel", None), ("whole", "tensor", None)):
        codes, scales = quantize(widen("bf16", data[f"{name}.weight"]), fmt, layout, block)
        scale_name = f"{name}.weight_scale_inv" if layout == "block" else f"{name}.weight_scale"
        assert_same(name, fp8_bits(got[f"{name}.weight"]), host(got[scale_name]).reshape(-1), codes, scales)
    assert np.array_equal(host(got["whole.bias"].view(torch.int16)).view(np.uint16), data["whole.bias"])


@needs_torch_fp8
def test_load_module_names_the_scale_parameter_that_is_missing_or_misshapen(client):
    topic = client.create_topic("policy")
    topic.alloc({"x.weight": ((130, 257), "bf16")})
    topic.publish({})
    reader = client.open_topic("policy")
    from weightbus.torch import load_module

    bare = served_model({"x.weight": torch.zeros(130, 257, dtype=torch.float8_e4m3fn)})
    with pytest.raises(ValueError, match="'x.weight_scale_inv' \\(blocks\\) or 'x.weight_scale'"):
        load_module(reader, bare)
    blocks = served_model({"x.weight": torch.zeros(130, 257, dtype=torch.float8_e4m3fn),
                           "x.weight_scale_inv": torch.zeros(2, 3)})
    assert load_module(reader, blocks) == 1  # 128 x 128: [2, 3] scales
    with pytest.raises(ValueError, match="'x.weight_scale_inv' is \\[2, 3\\], but 'x.weight' \\[130, 257\\] in "
                                         "blocks of fp8_block=\\(64, 64\\) has \\[3, 5\\] scales"):
        load_module(reader, blocks, fp8_block=(64, 64))
    rows = served_model({"x.weight": torch.zeros(130, 257, dtype=torch.float8_e4m3fn),
                         "x.weight_scale": torch.zeros(7)})
    with pytest.raises(ValueError, match="'x.weight_scale' is \\[7\\], but 'x.weight' \\[130, 257\\] takes one"):
        load_module(reader, rows)


@needs_torch_fp8
@pytest.mark.parametrize("device", DEVICES)
def test_the_serving_plan_quantizes_a_bf16_trainer_into_fp8_parameters(broker, device):
    """vLLM's FP8 Llama layer at TP rank 1 of 2: fused qkv per tensor (one weight_scale per part, all holding the
    destination's one scale), gate_up per row, o_proj and down_proj in blocks, the rest bf16. The trainer's
    tensors and the model on the host, or both on the GPU."""
    from weightbus import serving, vllm
    from test_sharded import CONFIG, P, trainer_model, vllm_expected

    full = {n: t.to(torch.bfloat16).to(device) for n, t in trainer_model().items()}
    try:
        vllm.WeightbusWeightTransferEngine.trainer_send_weights(iter(full.items()),
                                                                {"topic": "policy", "socket": broker.socket})
        want = vllm_expected({n: t.float().cpu() for n, t in full.items()}, 1, 2)
        fp8 = {f"{P}.self_attn.qkv_proj.weight": ("tensor", f"{P}.self_attn.qkv_proj.weight_scale", (3,)),
               f"{P}.mlp.gate_up_proj.weight": ("channel", f"{P}.mlp.gate_up_proj.weight_scale", None),
               f"{P}.self_attn.o_proj.weight": ("block", f"{P}.self_attn.o_proj.weight_scale_inv", None),
               f"{P}.mlp.down_proj.weight": ("block", f"{P}.mlp.down_proj.weight_scale_inv", None)}
        params = {n: t.to(torch.float8_e4m3fn if n in fp8 else torch.bfloat16) for n, t in want.items()}
        for name, (layout, scale_name, shape) in fp8.items():
            rows, cols = want[name].shape
            params[scale_name] = torch.zeros(shape or ((rows, 1) if layout == "channel" else
                                                       (-(-rows // 8), -(-cols // 8))))
        model = served_model(params).to(device)
        with broker.connect("server") as client:
            receiver = serving.ModelReceiver(client.open_topic("policy"), "plan", 1, 2, CONFIG, fp8_block=(8, 8))
            assert receiver.receive(1, model) == 1
            got = dict(model.named_parameters())
            for name, (layout, scale_name, _) in fp8.items():
                codes, scales = quantize(want[name].numpy(), E4M3, layout, (8, 8) if layout == "block" else None)
                held = host(got[scale_name]).reshape(-1)
                if layout == "tensor":
                    assert np.array_equal(held.view(np.uint32), np.repeat(scales, 3).view(np.uint32)), name
                    held = held[:1]
                assert_same(name, fp8_bits(got[name]), held, codes, scales)
            for name in set(want) - set(fp8):
                assert torch.equal(got[name].cpu(), want[name].to(torch.bfloat16)), name
            receiver.close()
    finally:
        serving.close_publishers()
