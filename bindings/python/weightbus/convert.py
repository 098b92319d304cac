"""Conversions on the way (weightbus.h, "Conversions"): a copy-into target or a slice plan's destination that
asks for another dtype than its source's, converted in one pass: bf16, f16 or f32 into f8e4m3 or f8e5m2 with
f32 scales written to a second buffer, and f32 into bf16.

    w8, s = np.empty((4096, 4096), np.uint8), np.empty((32, 32), np.float32)
    snapshot.copy_into({"w": Convert(w8, dtype="f8e4m3", scale=s, layout="block")})   # 128 x 128 blocks

A scale dequantizes (value ~= fp8 * scale): vLLM's weight_scale and DeepSeek-V3's weight_scale_inv alike. Layouts,
over the destination seen as a row-major matrix [R, C]: "tensor" one scale; "channel" one per row (R = shape[0]);
"block" one per block of a 2-D destination, ceil(R / rows) x ceil(C / cols), row-major. The library checks the
pair of dtypes (WB_E_DTYPE), the shape (WB_E_SHAPE) and the buffers' sizes (WB_E_SIZE), all InvalidArgumentError;
what is checked here, before the library is called, raises ValueError.
"""
from __future__ import annotations

from typing import Any, NamedTuple, Optional, Tuple

from ._buffers import buffer_address
from ._lib import SCALE_BLOCK, SCALE_CHANNEL, SCALE_NONE, SCALE_TENSOR, CopyTarget
from .dtypes import dtype_code, dtype_name, itemsize

FP8 = ("f8e4m3", "f8e5m2")
INTO_FP8 = ("bf16", "f16", "f32")  # the dtypes that convert into FP8
SCALE_LAYOUTS = {"tensor": SCALE_TENSOR, "channel": SCALE_CHANNEL, "block": SCALE_BLOCK}
# NumPy has no bf16 and no FP8: their bytes arrive in integer arrays of their size, which cannot say what they hold.
_RAW = {1: ("u8", "i8"), 2: ("u16", "i16")}


def converts(source: str, dtype: str) -> bool:
    """Whether weightbus.h's Conversions turn `source` into `dtype` (weightbus names): bf16, f16 or f32 into
    FP8, f32 into bf16. The same dtype is no conversion (a plain copy)."""
    return (dtype in FP8 and source in INTO_FP8) or (source, dtype) == ("f32", "bf16")


class Request(NamedTuple):
    """What a destination asks of the library, checked: its dtype and where its scales go."""
    dtype: str
    layout: int        # WB_SCALE_*
    block_rows: int    # 0 and 0: the library's 128 x 128
    block_cols: int
    scale: int         # address, 0 without scales
    scale_bytes: int


def request(what: str, dst: Any, device: int, dtype: Any, scale: Any, layout: Optional[str],
            block: Optional[Tuple[int, int]]) -> Request:
    """Checks what destination `dst` (on CUDA ordinal `device`, -1 the host) asks for and says it as the C
    fields take it; `what` names it in the ValueError raised. dtype None: dst's own. A scale buffer needs a
    layout, and an FP8 dtype; a block needs layout "block"."""
    name = _dst_dtype(what, dst, dtype)
    if scale is None:
        if layout is not None:
            raise ValueError(f"{what}: scale layout {layout!r} without a scale buffer: give scale= (float32)")
        if block is not None:
            raise ValueError(f"{what}: block {block!r} without a scale buffer and layout 'block'")
        return Request(name, SCALE_NONE, 0, 0, 0, 0)
    if name not in FP8:
        raise ValueError(f"{what}: a scale buffer goes with an FP8 dtype ({', '.join(FP8)}); {name} has no scales")
    if layout not in SCALE_LAYOUTS:
        raise ValueError(f"{what}: a scale buffer needs layout 'tensor', 'channel' or 'block', not {layout!r}")
    rows, cols = check_block(what, layout, block)
    address, size, scale_device = buffer_address(scale, f"{what}: the scale buffer")
    if dtype_name(scale.dtype) != "f32":
        raise ValueError(f"{what}: the scale buffer must be float32, not {scale.dtype}")
    if scale_device != device:
        raise ValueError(f"{what}: the scale buffer must lie where dst does ({_device(device)}), not on "
                         f"{_device(scale_device)}")
    return Request(name, SCALE_LAYOUTS[layout], rows, cols, address, size)


def _dst_dtype(what: str, dst: Any, dtype: Any) -> str:
    own = dtype_name(dst.dtype)
    if dtype is None:
        if any(own in raw for raw in _RAW.values()):
            raise ValueError(f"{what}: a {own} buffer does not say which dtype it receives: give dtype= (e.g. "
                             "'f8e4m3', 'f8e5m2' or 'bf16')")
        return own
    name = dtype_name(dtype)
    if name != own and own not in _RAW.get(itemsize(name), ()):
        raw = " or ".join(_RAW.get(itemsize(name), ()))
        raise ValueError(f"{what}: dst holds {own}, not {name}: give a buffer of {name}" +
                         (f" (or of raw {raw} elements)" if raw else ""))
    return name


def check_block(what: str, layout: str, block: Any) -> Tuple[int, int]:
    """A block as the C fields take it: None is (0, 0), the library's 128 x 128; else (rows, cols), two positive
    integers, with layout "block" (ValueError naming `what` otherwise)."""
    if block is None:
        return 0, 0
    if layout != "block":
        raise ValueError(f"{what}: block {block!r} is for layout 'block', not {layout!r}")
    if (not isinstance(block, (tuple, list)) or len(block) != 2 or
            not all(isinstance(b, int) and not isinstance(b, bool) and 0 < b < 2**32 for b in block)):
        raise ValueError(f"{what}: block must be (rows, cols), two positive integers, not {block!r}")
    return block[0], block[1]


def _device(device: int) -> str:
    return "the host" if device < 0 else f"cuda:{device}"


class Convert:
    """A copy-into destination (Snapshot.copy_into, CopyPlan) that converts on the way: `dst` the buffer (a
    contiguous torch tensor or writable NumPy array), `dtype` what it receives (a weightbus name such as
    "f8e4m3", "f8e5m2", "bf16", or a torch/NumPy dtype; None: dst's own, which a torch float8_e4m3fn,
    float8_e5m2 or bfloat16 tensor says, and a NumPy uint8 array cannot), `scale` the float32 buffer of the
    scales (required for the FP8 dtypes, refused otherwise; where dst is), `layout` "tensor", "channel" or
    "block" (required with scale), `block` (rows, cols) with layout "block" (None: 128 x 128).

    Frozen: it keeps dst and scale alive, and so does a CopyPlan holding it. Raises ValueError for what it
    checks itself (above); the library checks the rest when the copy runs (see weightbus.convert)."""

    __slots__ = ("dst", "dtype", "scale", "layout", "block", "_request", "_address")

    def __init__(self, dst: Any, *, dtype: Any = None, scale: Any = None, layout: Optional[str] = None,
                 block: Optional[Tuple[int, int]] = None) -> None:
        address = buffer_address(dst, "Convert's dst")
        checked = request("Convert", dst, address[2], dtype, scale, layout, block)
        if checked.dtype in FP8 and scale is None:
            raise ValueError(f"Convert to {checked.dtype} needs scale= (a float32 buffer) and layout= ('tensor', "
                             "'channel' or 'block'); to copy FP8 bytes as they are, pass the buffer itself")
        for field, value in (("dst", dst), ("dtype", checked.dtype), ("scale", scale), ("layout", layout),
                             ("block", tuple(block) if block is not None else None), ("_request", checked),
                             ("_address", address)):
            object.__setattr__(self, field, value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"Convert is frozen: make a new one rather than set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"Convert is frozen: {name!r} stays")

    def __repr__(self) -> str:
        layout = f", layout={self.layout!r}" if self.layout else ""
        block = f", block={self.block}" if self.block else ""
        return f"<weightbus.Convert to {self.dtype}{layout}{block}>"

    def _fill(self, target: CopyTarget) -> None:
        """Sets the copy target's destination and conversion fields."""
        target.dst, target.dst_bytes, target.device = self._address
        target.dtype, target.scale_layout = dtype_code(self.dtype), self._request.layout
        target.block_rows, target.block_cols = self._request.block_rows, self._request.block_cols
        target.scale, target.scale_bytes = self._request.scale or None, self._request.scale_bytes
