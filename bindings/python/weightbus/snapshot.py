"""A reader's lease on one version of a topic."""
from __future__ import annotations

import ctypes
import threading
from typing import TYPE_CHECKING, Any, Iterator, List, Mapping, Optional

from . import _dlpack
from ._interruptible import call_in_slices
from ._buffers import buffer_address
from ._lib import CopyTarget, TensorInfo, lib, new
from ._streams import stream_pointer
from .convert import Convert
from .errors import NotFoundError, StateError, TensorNotFoundError, c_string
from .tensor import Tensor

if TYPE_CHECKING:
    from .topic import Topic


class Snapshot(Mapping[str, Tensor]):
    """One version of a topic, leased: none of its bytes change while it is held.

    Use it as a context manager (`with topic.snapshot() as s:`), or call release(). Tensors taken from it keep
    the version leased until they are garbage-collected too (see Tensor), so that arrays made from them never
    see another version's bytes.

    It is a read-only mapping from the names of the topic's tensors and views to their Tensors: `s[name]`,
    `name in s`, `len(s)`, iteration over the names in topic order, `keys()`, `values()`, `items()`, `get()`,
    `dict(s)`. A name the topic lacks raises TensorNotFoundError, both a KeyError and a NotFoundError. A sharded
    topic's names are its logical tensors, which have no one address: their values raise StateError (use
    shard() or a SlicePlan). Snapshots compare by identity: two leases of one version are two holds.
    """

    # Mapping would compare snapshots by their items, taking a Tensor (a hold on the version) of every entry
    # for each comparison, and would leave them unhashable.
    __eq__ = object.__eq__
    __hash__ = object.__hash__

    def __init__(self, topic: "Topic", handle: ctypes.c_void_p) -> None:
        self.topic = topic
        self._handle: Optional[ctypes.c_void_p] = handle
        self._released = False  # by the user; the C handle lives on while tensors do
        self._live_tensors = 0
        self._lock = threading.RLock()  # release() may come from another thread than a lookup
        version = ctypes.c_uint64()
        lib.wb_snapshot_version(handle, ctypes.byref(version))
        data, size, stamp = ctypes.c_void_p(), ctypes.c_uint32(), ctypes.c_uint64()
        lib.wb_snapshot_metadata(handle, ctypes.byref(data), ctypes.byref(size), ctypes.byref(stamp))
        self.version: int = version.value
        self.metadata: bytes = ctypes.string_at(data, size.value) if size.value else b""
        self.timestamp_ns: int = stamp.value

    def __repr__(self) -> str:
        state = "released" if self._released else "held"
        return f"<weightbus.Snapshot of {self.topic.name!r} version {self.version}, {state}>"

    def __enter__(self) -> "Snapshot":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def __del__(self) -> None:
        if getattr(self, "_handle", None) is not None:
            lib.wb_snapshot_release(self._handle)

    def release(self) -> None:
        """Ends the caller's hold on the version; tensors still alive keep it leased until they die."""
        with self._lock:
            self._released = True
            if self._live_tensors == 0:
                self._free()
        _dlpack.sweep()  # capsules a consumer refused hold leases of their own until swept

    def _free(self) -> None:
        if self._handle is not None:
            handle, self._handle = self._handle, None
            lib.wb_snapshot_release(handle)
            self.topic._snapshot_freed()

    # Tensors --------------------------------------------------------------------------------------------------

    def tensor(self, name: str) -> Tensor:
        """The tensor or view `name` as of this version (NotFoundError if the topic has none)."""
        info = new(TensorInfo)
        with self._lock:
            self._check_open()
            lib.wb_snapshot_tensor(self._handle, c_string(name), ctypes.byref(info))
            return Tensor(self, info, writable=False)

    def __getitem__(self, name: str) -> Tensor:
        """tensor(name), but a name the topic lacks raises TensorNotFoundError: the KeyError of a mapping (for
        get(), dict() and the like) that is also the NotFoundError tensor() raises."""
        if not isinstance(name, str):
            raise TensorNotFoundError(f"WB_E_NOT_FOUND: topic {self.topic.name!r} names its tensors with strings, "
                                      f"not {type(name).__name__} {name!r}", -3)
        try:
            return self.tensor(name)
        except NotFoundError as e:
            if name in self:  # named, yet not reachable here (its GPU is not visible): not a missing key
                raise
            raise TensorNotFoundError(f"{e} (version {self.version})", -3) from None

    def shard(self, name: str, rank: int, index: int = 0) -> Tensor:
        """Sharded topic: shard number `index` of rank `rank` of logical tensor `name` as of this version, its
        shape the shard's extent (tensor() of a sharded tensor raises StateError: use this or a SlicePlan)."""
        info = new(TensorInfo)
        with self._lock:
            self._check_open()
            lib.wb_snapshot_shard(self._handle, c_string(name), rank, index, ctypes.byref(info))
            return Tensor(self, info, writable=False, shard=(rank, index))

    def names(self) -> List[str]:
        """The names of the topic's tensors and views, in topic order."""
        return self.topic.names()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return self.topic.tensor_count()

    def __contains__(self, name: object) -> bool:
        return name in self.names()  # by name, without taking a Tensor (Mapping's way)

    def copy_into(self, targets: "Mapping[str, Any] | CopyPlan", stream: Any = None) -> None:
        """Copies tensors into your own buffers: {name: torch tensor, NumPy array or Convert}, or a CopyPlan made
        once for buffers that receive every version. A Convert converts on the way (bf16/f16/f32 into FP8 with
        scales, f32 into bf16; see weightbus.convert). CUDA copies run on `stream` (None: the legacy default
        stream) after the version's GPU work; synchronize it before the snapshot is released. Host-to-host
        copies are done when this returns. Errors (InvalidArgumentError, naming the target): WB_E_SIZE (a buffer
        too small, scales too), WB_E_DTYPE (a pair of dtypes that does not convert), WB_E_SHAPE (a block layout
        on a tensor that is not 2-D, a view converted); and those of CopyPlan."""
        plan = targets if isinstance(targets, CopyPlan) else CopyPlan(targets)
        with self._lock:
            self._check_open()
            lib.wb_snapshot_copy_into(self._handle, plan._array, len(plan._array), stream_pointer(stream))

    def wait_stream(self, stream: Any = None) -> None:
        """Makes `stream` wait for the GPU work that wrote this version, without blocking the host."""
        self._order_stream(stream_pointer(stream))

    def synchronize(self, timeout: Optional[float] = None) -> None:
        """Blocks until the GPU work that wrote this version is done (WaitTimeoutError after `timeout` s, None:
        no limit). Ctrl-C interrupts it (KeyboardInterrupt)."""
        with self._lock:
            self._check_open()
            handle = self._handle
            call_in_slices(lambda ms: lib.wb_snapshot_synchronize(handle, ms), timeout)

    # What Tensor needs of its owner ---------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._handle is None:
            raise StateError(f"the snapshot of {self.topic.name!r} version {self.version} is released")

    def _tensor_born(self) -> None:
        with self._lock:
            self._live_tensors += 1

    def _tensor_died(self) -> None:
        with self._lock:
            self._live_tensors -= 1
            if self._released and self._live_tensors == 0:
                self._free()

    def _export(self, name: str, versioned: bool) -> Any:
        export = lib.wb_snapshot_dlpack_versioned if versioned else lib.wb_snapshot_dlpack
        with self._lock:
            self._check_open()
            return _dlpack.export(export, self._handle, name, versioned)

    def _order_stream(self, stream: Optional[int]) -> None:
        with self._lock:
            self._check_open()
            lib.wb_snapshot_wait_stream(self._handle, stream)

    def _synchronize(self) -> None:
        self.synchronize()


class _Hold:
    """Keeps a snapshot's version leased while it lives, as a Tensor taken from it does: what an array made
    from many of its tensors at once (weightbus.torch.snapshot_tensors) keeps alive."""

    __slots__ = ("_snapshot",)

    def __init__(self, snapshot: Snapshot) -> None:
        snapshot._tensor_born()
        self._snapshot = snapshot

    def __del__(self) -> None:
        self._snapshot._tensor_died()


class CopyPlan:
    """Destinations for Snapshot.copy_into, resolved once: {topic tensor name: destination}, a destination being
    a contiguous torch tensor or writable NumPy array (the tensor's bytes copied as they are), or a Convert (the
    tensor converted into its dtype, its scales written to its scale buffer). It keeps the buffers alive, scale
    buffers too; a server that loads every version into the same buffers makes one and reuses it. Raises
    ValueError and TypeError for buffers it cannot take (naming the tensor); the library checks sizes, dtypes
    and shapes when the copy runs."""

    def __init__(self, targets: Mapping[str, Any]) -> None:
        self._buffers = dict(targets)
        self._array = (CopyTarget * len(self._buffers))()
        for target, (name, buffer) in zip(self._array, self._buffers.items()):
            target.struct_size = ctypes.sizeof(CopyTarget)
            target.name = c_string(name)
            if isinstance(buffer, Convert):
                buffer._fill(target)
            else:
                target.dst, target.dst_bytes, target.device = buffer_address(
                    buffer, f"copy_into's destination of {name!r}")
