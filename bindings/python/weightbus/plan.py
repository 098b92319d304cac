"""Reading one's slice of a sharded model: slice plans, and the frameworks' split formulas (wb_split & co.).

A destination is a dict: {"dst": a torch tensor or NumPy array, "parts": [part, ...], "concat_dim": 0}, its
parts concatenated along concat_dim make the buffer's shape. A part is a box of one logical tensor:
{"name": "model.layers.0.self_attn.q_proj.weight", "offset": [0, 0], "extent": [2048, 4096], "pad": 0}, where
"pad" rows (along concat_dim, after the box) are zero-filled (vLLM's vocabulary padding). weightbus.torch
builds them for vLLM's tensor-parallel layouts (vllm_tp_layout).

A destination converts on the way (weightbus.convert) where its dtype is not its parts': "dtype" (what dst
receives: a weightbus name or a torch/NumPy dtype; default dst's own, so that a bfloat16 tensor fed from f32
tensors converts, and a NumPy uint8 array says "f8e4m3" this way), and for FP8 "scale" (a float32 buffer where
dst is), "scale_layout" ("tensor", "channel" or "block") and, with "block", "block" ((rows, cols); default
128 x 128). The scales are those of the destination as the reader holds it, all its parts together.
"""
from __future__ import annotations

import ctypes
import threading
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence, Tuple

from . import _lib
from ._lib import PlanInfo as _PlanInfo, SliceDest, SlicePart, lib, new
from ._streams import stream_pointer
from ._buffers import buffer_layout
from ._interruptible import call_in_slices
from .convert import request
from .dtypes import dtype_code
from .errors import StateError, WaitTimeoutError, c_string, error_for

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
    # How the plan's arms went (weightbus.h, "GPU arms"): arms made, of which GPU arms, of which a wait found
    # copied by the GPU (the version's publisher let them go; the others were withdrawn).
    arms: int = 0
    gpu_arms: int = 0
    gpu_arms_claimed: int = 0


class SlicePlan:
    """Destinations resolved once into region copies from a topic's shards (wb_plan_create): every destination
    is checked here, none again per version. Works on plain topics too. run(snapshot) fills the buffers with
    the snapshot's version. It keeps the buffers alive, scale buffers too; close it (or use it as a context
    manager) before the topic, which closes its plans when it closes.

    Raises ValueError for a destination dict it cannot take (a key it does not know, a scale without a
    layout...: see the module's doc), and InvalidArgumentError from the library, naming dests[i] and its part:
    WB_E_DTYPE (a dtype pair that does not convert, scales that do not fit it), WB_E_SHAPE (boxes and shapes
    that do not fit; converting: a strided dst, a block layout on a dst that is not 2-D), WB_E_SIZE (dst or
    scale too small); NotFoundError (no such tensor), StateError (the layout is not complete)."""

    def __init__(self, topic: "Topic", dests: Sequence[Dest]) -> None:
        self.topic = topic
        for i, dest in enumerate(dests):
            _check_keys(i, dest)
        self._buffers = [dest["dst"] for dest in dests]
        self._scales = [dest["scale"] for dest in dests if dest.get("scale") is not None]
        parts = [part for dest in dests for part in dest["parts"]]
        c_dests = (SliceDest * max(1, len(dests)))()
        c_parts = (SlicePart * max(1, len(parts)))()
        first = 0
        for i, (c_dest, dest) in enumerate(zip(c_dests, dests)):
            _fill_dest(c_dest, dest, first, f"dests[{i}]")
            first += len(dest["parts"])
        for c_part, part in zip(c_parts, parts):
            _fill_part(c_part, part)
        handle = ctypes.c_void_p()
        lib.wb_plan_create(topic.handle, c_dests, len(dests), c_parts, len(parts), ctypes.byref(handle))
        self._handle: Optional[ctypes.c_void_p] = handle
        self._arms: "weakref.WeakSet[Armed]" = weakref.WeakSet()
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
        """Frees the plan (wb_plan_destroy) and lets go of the buffers; withdraws its arms first."""
        if self._handle is None:
            return
        for armed in list(self._arms):
            armed.release()
        handle, self._handle = self._handle, None
        lib.wb_plan_destroy(handle)
        self._buffers, self._scales = [], []
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
        self._ran(stream)

    def _ran(self, stream: Any) -> None:
        """What a subclass does on `stream` after each run of the plan (run's, or an arm's wait's)."""

    def arm(self, after: int, stream: Any = None) -> "Armed":
        """Arms the plan for the first version after `after` (the last one loaded; 0: any) before it is published
        (wb_plan_arm): Armed.wait() then copies it, as run() would, on `stream`. Its lease keeps no publisher
        waiting until that version is published, and pins it from then on. When the latest is newer than `after`
        and can be read now, that one is armed (wait() copies it at once). Raises InvalidArgumentError (`after`
        beyond the latest), NotFoundError (the topic was removed), CapacityError (every lease slot held)."""
        if self._handle is None:
            raise StateError(f"the slice plan of {self.topic.name!r} is closed")
        handle = ctypes.c_void_p()
        lib.wb_plan_arm(self._handle, after, stream_pointer(stream), ctypes.byref(handle))
        armed = Armed(self, handle, stream)
        self._arms.add(armed)
        return armed

    @property
    def info(self) -> SlicePlanInfo:
        if self._handle is None:
            raise StateError(f"the slice plan of {self.topic.name!r} is closed")
        info = new(_PlanInfo)
        lib.wb_plan_get_info(self._handle, ctypes.byref(info))
        return SlicePlanInfo(info.dests, info.copies, info.copies_2d, info.bytes, info.pad_bytes, info.arms,
                             info.gpu_arms, info.gpu_arms_claimed)


class Armed:
    """A SlicePlan armed for the first version after one the reader had (SlicePlan.arm): that version is leased
    before it is published, and wait() copies it once it is. A server's loop:

        seen = 0
        while True:
            with plan.arm(seen, stream) as armed:
                with armed.wait() as snapshot:   # the copies are on `stream`
                    stream.synchronize()
                    seen = snapshot.version

    Use it as a context manager or call release(): an arm not waited for holds its lease until then (the
    garbage collector releases it too). Closing the plan or the topic withdraws it."""

    def __init__(self, plan: SlicePlan, handle: ctypes.c_void_p, stream: Any) -> None:
        self.plan = plan
        self._handle: Optional[ctypes.c_void_p] = handle
        self._stream = stream
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        state = f"version {self.version}" if self._handle is not None else "spent"
        return f"<weightbus.Armed of {self.plan.topic.name!r}, {state}>"

    def __enter__(self) -> "Armed":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def __del__(self) -> None:
        if getattr(self, "_handle", None) is not None:
            lib.wb_armed_release(self._handle)

    @property
    def version(self) -> int:
        """The version armed now (a version skipped by its publisher moves the arm to the one published)."""
        with self._lock:
            version = ctypes.c_uint64()
            lib.wb_armed_version(self._check_armed(), ctypes.byref(version))
            return version.value

    @property
    def on_stream(self) -> bool:
        """Whether this is a GPU arm (wb_armed_on_stream): its copies are enqueued on its stream already, to run the
        moment the version is published, and the stream is held until then (or until the arm is withdrawn or its
        hold runs out: weightbus.h, "GPU arms").
        False: wait() runs them."""
        with self._lock:
            flag = ctypes.c_int32()
            lib.wb_armed_on_stream(self._check_armed(), ctypes.byref(flag))
            return bool(flag.value)

    def wait(self, timeout: Optional[float] = None) -> "Snapshot":
        """Waits until the armed version is published, runs the plan for it (wb_armed_wait) and returns its
        Snapshot: release it once the stream's copies are done. Raises WaitTimeoutError after `timeout` seconds
        (None: no limit; the arm stays: wait again or release it); DirtyError (the version was published but
        the topic is still left half-written), NotFoundError, BrokerGoneError and run()'s errors spend the arm.
        Ctrl-C interrupts the wait (KeyboardInterrupt), the arm kept."""
        with self._lock:
            armed, leased = self._check_armed(), ctypes.c_void_p()
            try:
                call_in_slices(lambda ms: lib.wb_armed_wait(armed, ms, ctypes.byref(leased)), timeout)
            except WaitTimeoutError:
                raise
            except KeyboardInterrupt:
                if leased.value is None:  # interrupted between two slices: still armed
                    raise
                self._spent()
                lib.wb_snapshot_release(leased)  # copied, then interrupted before Python saw it
                raise
            except BaseException:
                self._spent()
                raise
            self._spent()
            snapshot = self.plan.topic._leased(leased)
        self.plan._ran(self._stream)
        return snapshot

    def release(self) -> None:
        """Withdraws the arm (wb_armed_release) unless it was waited for: nothing is copied."""
        with self._lock:
            if self._handle is not None:
                handle = self._handle
                self._spent()
                lib.wb_armed_release(handle)

    def _check_armed(self) -> ctypes.c_void_p:
        if self._handle is None:
            raise StateError(f"the arm of {self.plan.topic.name!r} is spent (waited for or released)")
        return self._handle

    def _spent(self) -> None:
        self._handle = None
        self.plan._arms.discard(self)


def _fill_part(c_part: SlicePart, part: Mapping[str, Any]) -> None:
    offset, extent = list(part.get("offset") or [0] * len(part["extent"])), list(part["extent"])
    if len(offset) != len(extent) or len(extent) > _lib.MAX_DIMS:
        raise error_for(-7, f"part of {part['name']!r}: offset {offset} and extent {extent} need the same "
                        f"number of dimensions, at most {_lib.MAX_DIMS}")
    c_part.struct_size = ctypes.sizeof(SlicePart)
    c_part.name, c_part.ndim, c_part.pad = c_string(part["name"]), len(extent), int(part.get("pad", 0))
    for d, (o, e) in enumerate(zip(offset, extent)):
        c_part.offset[d], c_part.extent[d] = o, e


_KEYS = ("dst", "parts", "concat_dim", "dtype", "scale", "scale_layout", "block")


def _check_keys(index: int, dest: Mapping[str, Any]) -> None:
    unknown = sorted(set(dest) - set(_KEYS), key=str)
    if unknown:
        raise ValueError(f"dests[{index}]: unknown keys {unknown}; a destination has {', '.join(_KEYS)}")
    missing = [key for key in ("dst", "parts") if key not in dest]
    if missing:
        raise ValueError(f"dests[{index}]: no {' and no '.join(map(repr, missing))}; a destination needs both")


def _fill_dest(c_dest: SliceDest, dest: Mapping[str, Any], first_part: int, what: str) -> None:
    address, capacity, device, _, shape, strides = buffer_layout(dest["dst"], f"{what}'s dst")
    if len(shape) > _lib.MAX_DIMS:
        raise error_for(-7, f"a destination has {len(shape)} dimensions, more than {_lib.MAX_DIMS}")
    wanted = request(what, dest["dst"], device, dest.get("dtype"), dest.get("scale"), dest.get("scale_layout"),
                     dest.get("block"))
    c_dest.struct_size = ctypes.sizeof(SliceDest)
    c_dest.device, c_dest.first_part, c_dest.part_count = device, first_part, len(dest["parts"])
    c_dest.concat_dim, c_dest.ndim, c_dest.dtype = int(dest.get("concat_dim", 0)), len(shape), dtype_code(wanted.dtype)
    c_dest.dst, c_dest.dst_bytes = address, capacity
    c_dest.scale_layout, c_dest.block_rows, c_dest.block_cols = wanted.layout, wanted.block_rows, wanted.block_cols
    c_dest.scale, c_dest.scale_bytes = wanted.scale or None, wanted.scale_bytes
    for d, (extent, stride) in enumerate(zip(shape, strides)):
        c_dest.shape[d], c_dest.strides[d] = extent, stride
