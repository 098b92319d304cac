"""Reading one's slice of a sharded model: slice plans, and the frameworks' split formulas (wb_split & co.).

A destination is a dict: {"dst": a torch tensor or NumPy array, "parts": [part, ...], "concat_dim": 0}, its
parts concatenated along concat_dim make the buffer's shape. A part is a box of one logical tensor:
{"name": "model.layers.0.self_attn.q_proj.weight", "offset": [0, 0], "extent": [2048, 4096], "pad": 0}, where
"pad" rows (along concat_dim, after the box) are zero-filled (vLLM's vocabulary padding). weightbus.torch
builds them for vLLM's tensor-parallel layouts (vllm_tp_layout).
"""
from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple

from . import _lib
from ._lib import PlanInfo as _PlanInfo, SliceDest, SlicePart, lib, new
from ._streams import stream_pointer
from .dtypes import dtype_code, dtype_name, itemsize
from .errors import StateError, c_string, error_for

if TYPE_CHECKING:
    from .snapshot import Snapshot
    from .topic import Topic

Part = Dict[str, Any]
Dest = Mapping[str, Any]

_MODES = {"even": 0, "chunk": 1}


def split(size: int, rank: int, ranks: int, mode: str = "even") -> Tuple[int, int]:
    """Rank `rank` of `ranks`'s (offset, extent) of a dimension of `size`. mode "even": size must divide by
    ranks (vLLM's and Megatron's tensor parallelism, else InvalidArgumentError); "chunk": torch.chunk and
    DTensor Shard(d), chunks of ceil(size / ranks), the last ones short or empty."""
    if mode not in _MODES:
        raise ValueError(f"split mode must be 'even' or 'chunk', not {mode!r}")
    offset, extent = ctypes.c_int64(), ctypes.c_int64()
    lib.wb_split(size, rank, ranks, _MODES[mode], ctypes.byref(offset), ctypes.byref(extent))
    return offset.value, extent.value


def split_vocab(vocab: int, rank: int, ranks: int, pad_to: int = 64) -> Tuple[int, int, int]:
    """vLLM's VocabParallelEmbedding / ParallelLMHead: (offset, extent, padded_extent) of rank `rank`: the real
    rows [offset, offset + extent) of the vocabulary, then padded_extent - extent rows of zeros."""
    offset, extent, padded = ctypes.c_int64(), ctypes.c_int64(), ctypes.c_int64()
    lib.wb_split_vocab(vocab, pad_to, rank, ranks, ctypes.byref(offset), ctypes.byref(extent), ctypes.byref(padded))
    return offset.value, extent.value, padded.value


def parts_qkv(q: str, k: str, v: str, heads: int, kv_heads: int, head_dim: int, hidden: int, rank: int,
              ranks: int) -> List[Part]:
    """vLLM's QKVParallelLinear: the three parts (q, k, v, concatenated along dimension 0) of rank `rank`'s
    fused weight, from logical tensors q [heads*head_dim, hidden], k and v [kv_heads*head_dim, hidden]."""
    out = (SlicePart * 3)()
    lib.wb_parts_qkv(c_string(q), c_string(k), c_string(v), heads, kv_heads, head_dim, hidden, rank, ranks, out)
    return [_part_dict(name, p) for name, p in zip((q, k, v), out)]


def parts_merged(names: Sequence[str], rows: Sequence[int], cols: int, rank: int, ranks: int) -> List[Part]:
    """vLLM's MergedColumnParallelLinear (gate_up): rank `rank`'s rows of each 2-D logical tensor names[i]
    ([rows[i], cols]), concatenated along dimension 0 in order."""
    if len(names) != len(rows):
        raise ValueError(f"{len(names)} names but {len(rows)} row counts")
    c_names = (ctypes.c_char_p * len(names))(*[c_string(n) for n in names])
    c_rows = (ctypes.c_int64 * len(rows))(*rows)
    out = (SlicePart * len(names))()
    lib.wb_parts_merged(c_names, c_rows, len(names), cols, rank, ranks, out)
    return [_part_dict(name, p) for name, p in zip(names, out)]


def _part_dict(name: str, part: SlicePart) -> Part:
    """The part as a dict; its name is the caller's string (part.name points at a copy freed by now)."""
    return {"name": name, "offset": list(part.offset[: part.ndim]),
            "extent": list(part.extent[: part.ndim]), "pad": part.pad}


@dataclass(frozen=True)
class SlicePlanInfo:
    dests: int
    copies: int      # region copies per run
    copies_2d: int   # of which strided
    bytes: int       # copied per run
    pad_bytes: int   # zero-filled per run


class SlicePlan:
    """Destinations resolved once into region copies from a topic's shards (wb_plan_create): every destination
    is checked here, none again per version. Works on plain topics too. run(snapshot) fills the buffers with
    the snapshot's version. It keeps the buffers alive; close it (or use it as a context manager) before the
    topic, which closes its plans when it closes."""

    def __init__(self, topic: "Topic", dests: Sequence[Dest]) -> None:
        self.topic = topic
        self._buffers = [dest["dst"] for dest in dests]
        parts = [part for dest in dests for part in dest["parts"]]
        c_dests = (SliceDest * max(1, len(dests)))()
        c_parts = (SlicePart * max(1, len(parts)))()
        first = 0
        for c_dest, dest in zip(c_dests, dests):
            _fill_dest(c_dest, dest, first)
            first += len(dest["parts"])
        for c_part, part in zip(c_parts, parts):
            _fill_part(c_part, part)
        handle = ctypes.c_void_p()
        lib.wb_plan_create(topic.handle, c_dests, len(dests), c_parts, len(parts), ctypes.byref(handle))
        self._handle: Optional[ctypes.c_void_p] = handle
        topic._plan_made(self)

    def __repr__(self) -> str:
        return f"<weightbus.SlicePlan of {self.topic.name!r}, {len(self._buffers)} destination(s)>"

    def __enter__(self) -> "SlicePlan":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "_handle", None) is not None:
            lib.wb_plan_destroy(self._handle)

    def close(self) -> None:
        """Frees the plan (wb_plan_destroy) and lets go of the buffers."""
        if self._handle is None:
            return
        handle, self._handle = self._handle, None
        lib.wb_plan_destroy(handle)
        self._buffers = []
        self.topic._plan_closed(self)

    def run(self, snapshot: "Snapshot", stream: Any = None) -> None:
        """Fills the destinations with `snapshot`'s version: host buffers before it returns, CUDA buffers by
        copies on `stream` (None: the legacy default stream), ordered after the version's GPU work; synchronize
        the stream before releasing the snapshot."""
        if self._handle is None:
            raise StateError(f"the slice plan of {self.topic.name!r} is closed")
        with snapshot._lock:
            snapshot._check_open()
            lib.wb_plan_run(self._handle, snapshot._handle, stream_pointer(stream))

    @property
    def info(self) -> SlicePlanInfo:
        if self._handle is None:
            raise StateError(f"the slice plan of {self.topic.name!r} is closed")
        info = new(_PlanInfo)
        lib.wb_plan_get_info(self._handle, ctypes.byref(info))
        return SlicePlanInfo(info.dests, info.copies, info.copies_2d, info.bytes, info.pad_bytes)


def _fill_part(c_part: SlicePart, part: Mapping[str, Any]) -> None:
    offset, extent = list(part.get("offset") or [0] * len(part["extent"])), list(part["extent"])
    if len(offset) != len(extent) or len(extent) > _lib.MAX_DIMS:
        raise error_for(-7, f"part of {part['name']!r}: offset {offset} and extent {extent} need the same "
                        f"number of dimensions, at most {_lib.MAX_DIMS}")
    c_part.struct_size = ctypes.sizeof(SlicePart)
    c_part.name, c_part.ndim, c_part.pad = c_string(part["name"]), len(extent), int(part.get("pad", 0))
    for d, (o, e) in enumerate(zip(offset, extent)):
        c_part.offset[d], c_part.extent[d] = o, e


def _fill_dest(c_dest: SliceDest, dest: Mapping[str, Any], first_part: int) -> None:
    address, capacity, device, dtype, shape, strides = _buffer_layout(dest["dst"])
    if len(shape) > _lib.MAX_DIMS:
        raise error_for(-7, f"a destination has {len(shape)} dimensions, more than {_lib.MAX_DIMS}")
    c_dest.struct_size = ctypes.sizeof(SliceDest)
    c_dest.device, c_dest.first_part, c_dest.part_count = device, first_part, len(dest["parts"])
    c_dest.concat_dim, c_dest.ndim, c_dest.dtype = int(dest.get("concat_dim", 0)), len(shape), dtype_code(dtype)
    c_dest.dst, c_dest.dst_bytes = address, capacity
    for d, (extent, stride) in enumerate(zip(shape, strides)):
        c_dest.shape[d], c_dest.strides[d] = extent, stride


def _buffer_layout(buffer: Any) -> Tuple[int, int, int, str, Tuple[int, ...], Tuple[int, ...]]:
    """(address, bytes it spans, CUDA ordinal or -1, dtype, shape, strides in elements) of a torch tensor or a
    writable NumPy array."""
    if hasattr(buffer, "data_ptr") and hasattr(buffer, "stride"):  # torch.Tensor
        shape, strides, dtype = tuple(buffer.shape), tuple(buffer.stride()), dtype_name(buffer.dtype)
        device = buffer.device.index if buffer.is_cuda else -1
        return buffer.data_ptr(), _span(shape, strides, dtype), device, dtype, shape, strides
    interface = getattr(buffer, "__array_interface__", None)
    if interface is None:
        raise TypeError(f"cannot copy into {type(buffer).__name__}: give a torch tensor or a NumPy array")
    if interface["data"][1]:
        raise ValueError("a slice plan needs writable destination arrays")
    dtype = dtype_name(buffer.dtype)
    size = itemsize(dtype)
    if any(s % size for s in buffer.strides):
        raise ValueError(f"destination strides {buffer.strides} are not whole elements of {dtype}")
    shape, strides = tuple(buffer.shape), tuple(s // size for s in buffer.strides)
    return interface["data"][0], _span(shape, strides, dtype), -1, dtype, shape, strides


def _span(shape: Tuple[int, ...], strides: Tuple[int, ...], dtype: str) -> int:
    """Bytes from the first element to one past the last (the library checks the layout against it)."""
    if any(extent == 0 for extent in shape):
        return 0
    return (sum((extent - 1) * stride for extent, stride in zip(shape, strides)) + 1) * itemsize(dtype)
