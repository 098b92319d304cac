"""A topic opened as publisher or reader: its tensors, its versions, and waiting for new ones."""
from __future__ import annotations

import asyncio
import ctypes
import gc
import threading
import weakref
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple

from . import _lib
from ._lib import ShardSpec, TensorSpec, ViewSpec, lib, new, timeout_ms
from .dtypes import dtype_code, name_of_code
from ._closing import ClosesOnExit
from ._interruptible import call_in_slices
from .errors import StateError, WeightbusError, c_string, error_for
from .info import RankInfo, TensorLayout, TopicInfo
from .plan import SlicePlan
from .snapshot import Snapshot
from .update import Update

if TYPE_CHECKING:
    from .client import Client

# A tensor to create: (shape, dtype), or an object with .shape and .dtype (for register_cuda: a torch tensor).
TensorDefinition = Any
# A rank's shard: {"name": logical tensor, "dtype": ..., "logical_shape": [...], "offset": [...], "extent": [...],
# "replicated": False}; "tensor" (an array or torch tensor) may stand for dtype and extent.
ShardDefinition = Mapping[str, Any]


class Topic(ClosesOnExit):
    """A named set of tensors with one version sequence. Get one from Client.create_topic (publisher) or
    Client.open_topic (reader); close it, or use it as a context manager."""

    def __init__(self, client: "Client", handle: ctypes.c_void_p, name: str, publisher: bool,
                 rank: Optional[int] = None) -> None:
        self.client = client
        self.name = name
        self.is_publisher = publisher
        self.rank = rank  # the rank this handle publishes (Client.create_rank), else None
        self._plans: "weakref.WeakSet[SlicePlan]" = weakref.WeakSet()
        self._handle: Optional[ctypes.c_void_p] = handle
        self._update: Optional[Update] = None
        self._live_snapshots = 0
        self._lock = threading.Lock()
        self._async_waiters: Set[asyncio.Future] = set()

    def __repr__(self) -> str:
        role = "publisher" if self.is_publisher else "reader"
        role = role if self.rank is None else f"publisher of rank {self.rank}"
        return f"<weightbus.Topic {self.name!r} ({role})>"

    @property
    def handle(self) -> ctypes.c_void_p:
        """The wb_topic * of the C API, for calls this package does not wrap."""
        self.client._check_open()
        if self._handle is None:
            raise StateError(f"topic {self.name!r} is closed")
        return self._handle

    def close(self) -> None:
        """Closes the handle (an open update is aborted). StateError while snapshots or their tensors live."""
        if self._handle is None:
            return
        with self._lock:
            if self._live_snapshots:
                raise StateError(f"WB_E_STATE: {self._live_snapshots} snapshot(s) of topic {self.name!r} are "
                                 "still held (by a with block, or by tensors/arrays taken from them): release "
                                 "or delete them first")
        if self._update is not None:
            self._update._abort_if_open()
        for plan in list(self._plans):
            plan.close()
        try:
            lib.wb_topic_close(self._handle)
        except StateError:
            gc.collect()  # DLPack consumers' tensors (torch.from_dlpack) may be waiting in reference cycles
            lib.wb_topic_close(self._handle)
        self._handle = None
        self.client._topic_closed(self)

    # Layout ---------------------------------------------------------------------------------------------------

    def info(self) -> TopicInfo:
        info = new(_lib.TopicInfo)
        lib.wb_topic_get_info(self.handle, ctypes.byref(info))
        return TopicInfo._from_c(info)

    def tensor_count(self) -> int:
        """How many tensors and views the topic has (a publisher may add more; a plan made before sees none)."""
        count = ctypes.c_uint32()
        lib.wb_topic_tensor_count(self.handle, ctypes.byref(count))
        return count.value

    def layout(self) -> List[TensorLayout]:
        """Every tensor and view of the topic, in order."""
        result = []
        for index in range(self.tensor_count()):
            info = new(_lib.TensorInfo)
            lib.wb_topic_tensor(self._handle, index, ctypes.byref(info))
            result.append(TensorLayout._from_c(info))
        return result

    def names(self) -> List[str]:
        return [t.name for t in self.layout()]

    def alloc(self, tensors: Mapping[str, TensorDefinition], device: Any = None) -> None:
        """Publisher: creates tensors in storage the broker shares, zero-filled, R replicas each:
        {name: (shape, dtype)}, or {name: a description with .shape and .dtype that holds no values (a
        TensorLayout of Topic.layout(), jax.ShapeDtypeStruct)}. An array (NumPy, PyTorch...) is refused with
        InvalidArgumentError: its values would be ignored; give (a.shape, a.dtype) and publish the values
        (publish({name: a})): nothing is readable before the first publish anyway. `device` None or "cpu":
        shared host memory; "cuda:N" or N: GPU N (VMM memory that outlives this process). All or nothing; a name
        that exists with the same definition keeps its storage."""
        specs = _specs([(name, *_shape_and_dtype(_without_values(name, d))) for name, d in tensors.items()])
        ordinal = _cuda_ordinal(device)
        if ordinal is None:
            lib.wb_tensor_alloc(self.handle, specs, len(specs))
        else:
            lib.wb_tensor_alloc_cuda(self.handle, specs, len(specs), ordinal)

    def register_cuda(self, tensors: Mapping[str, Any]) -> None:
        """Publisher: shares existing CUDA tensors where they are, without copying: {name: tensor} for R = 1, or
        {name: [replica 0, ..., replica R-1]}. Each must be contiguous, on one GPU, and stay allocated until
        revoke() returns (PyTorch: keep a reference)."""
        names = list(tensors)
        replicas = [_as_list(tensors[name]) for name in names]
        count = {len(r) for r in replicas}
        if len(count) != 1:
            raise ValueError("every tensor needs the same number of replicas (the topic's R)")
        specs = _specs([(name, *_shape_and_dtype(r[0])) for name, r in zip(names, replicas)])
        per_replica = count.pop()
        pointers = (ctypes.c_void_p * (per_replica * len(names)))()
        for i, copies in enumerate(replicas):
            for r, tensor in enumerate(copies):
                if not tensor.is_contiguous():
                    raise ValueError(f"tensor {names[i]!r} (replica {r}) is not contiguous")
                pointers[r * len(names) + i] = tensor.data_ptr()
        lib.wb_tensor_register_cuda(self.handle, specs, pointers, len(names))

    def view(self, name: str, parent: str, dtype: Any, shape: Sequence[int],
             strides: Optional[Sequence[int]] = None, offset: int = 0) -> None:
        """Registers a zero-copy view: `shape` elements of `dtype` starting `offset` bytes into `parent`, with
        `strides` in elements (default: contiguous)."""
        if len(shape) > _lib.MAX_DIMS:
            raise error_for(-7, f"view {name!r} has {len(shape)} dimensions, more than {_lib.MAX_DIMS}")
        spec = new(ViewSpec)
        spec.name, spec.parent, spec.dtype = c_string(name), c_string(parent), dtype_code(dtype)
        spec.byte_offset, spec.ndim = offset, len(shape)
        strides = _contiguous_strides(shape) if strides is None else strides
        for d, (extent, stride) in enumerate(zip(shape, strides)):
            spec.shape[d], spec.strides[d] = extent, stride
        lib.wb_tensor_view(self.handle, ctypes.byref(spec))

    # Sharded topics ---------------------------------------------------------------------------------------------

    def alloc_shards(self, shards: Sequence[ShardDefinition], device: Any = None) -> None:
        """Rank publisher (Client.create_rank): creates this rank's shards, each a box of a logical tensor:
        {"name": logical tensor, "dtype": ..., "logical_shape": [...], "offset": [...], "extent": [...]}, or
        {"name", "dtype", "logical_shape", "replicated": True} for a whole tensor every rank holding it holds
        alike; "tensor" (a torch tensor or array) may stand for "dtype" and "extent". `device` as in alloc().
        A rank holding two boxes of one tensor lists both (Update.shard tells them apart by order). Raises
        LayoutError for an overlap with, or a dtype or logical shape other than, another rank's shard."""
        specs = _shard_specs(shards)
        ordinal = _cuda_ordinal(device)
        if ordinal is None:
            lib.wb_shard_alloc(self.handle, specs, len(specs))
        else:
            lib.wb_shard_alloc_cuda(self.handle, specs, len(specs), ordinal)

    def register_shards_cuda(self, shards: Sequence[ShardDefinition]) -> None:
        """Rank publisher: shares existing contiguous CUDA tensors as this rank's shards, without copying: each
        shard description as for alloc_shards, with "tensor" a torch tensor (R = 1) or a list of R of them."""
        replicas = [_as_list(shard["tensor"]) for shard in shards]
        count = {len(r) for r in replicas}
        if len(count) != 1:
            raise ValueError("every shard needs the same number of replicas (the topic's R)")
        specs = _shard_specs([{**shard, "tensor": r[0]} for shard, r in zip(shards, replicas)])
        per_replica = count.pop()
        pointers = (ctypes.c_void_p * (per_replica * len(shards)))()
        for i, copies in enumerate(replicas):
            for r, tensor in enumerate(copies):
                if not tensor.is_contiguous():
                    raise ValueError(f"shard {i} of {shards[i]['name']!r} (replica {r}) is not contiguous")
                pointers[r * len(shards) + i] = tensor.data_ptr()
        lib.wb_shard_register_cuda(self.handle, specs, pointers, len(shards))

    def seal_rank(self, timeout: Optional[float] = None) -> None:
        """Rank publisher: this rank registers no more shards (the first update() does it too). The last rank's
        seal checks that the shards cover every logical tensor: LayoutError names what is missing, and this rank
        stays unsealed."""
        lib.wb_topic_seal_rank(self.handle, timeout_ms(timeout))

    def rank_info(self, rank: int) -> RankInfo:
        """Rank `rank` of a sharded topic: its publisher, seal, shards and versions (any handle, readers too)."""
        info = new(_lib.RankInfo)
        lib.wb_topic_rank_info(self.handle, rank, ctypes.byref(info))
        return RankInfo._from_c(info)

    def shard_box(self, name: str, rank: int, index: int = 0) -> Dict[str, Any]:
        """Shard number `index` of rank `rank` of logical tensor name as its rank registered it, in the form
        alloc_shards takes: {"name", "dtype", "logical_shape", "offset", "extent", "replicated"} (any handle,
        readers too; no version needed). NotFoundError when the rank holds no such shard."""
        spec = new(ShardSpec)
        lib.wb_topic_shard(self.handle, c_string(name), rank, index, ctypes.byref(spec))
        n = spec.ndim
        return {"name": name, "dtype": name_of_code(spec.dtype), "logical_shape": tuple(spec.logical_shape[:n]),
                "offset": tuple(spec.offset[:n]), "extent": tuple(spec.extent[:n]),
                "replicated": bool(spec.flags & 1)}  # WB_SHARD_REPLICATED

    def ranks(self) -> List[RankInfo]:
        """Every rank of a sharded topic ([] for a plain topic)."""
        return [self.rank_info(r) for r in range(self.info().ranks)]

    def slice_plan(self, dests: Sequence[Mapping[str, Any]]) -> SlicePlan:
        """SlicePlan(self, dests): see weightbus.plan."""
        return SlicePlan(self, dests)

    def revoke(self, name: str, timeout: Optional[float] = None) -> None:
        """Publisher: revokes the CUDA allocation holding `name` (see wb_tensor_revoke) and waits at most
        `timeout` seconds (None: no limit) until no other process maps it (WaitTimeoutError; it stays revoked)."""
        topic, c_name = self.handle, c_string(name)
        call_in_slices(lambda ms: lib.wb_tensor_revoke(topic, c_name, ms), timeout)

    # Versions -------------------------------------------------------------------------------------------------

    @property
    def latest(self) -> int:
        """The latest published version (0 before the first)."""
        version = ctypes.c_uint64()
        lib.wb_topic_latest(self.handle, ctypes.byref(version))
        return version.value

    def update(self, timeout: Optional[float] = None) -> Update:
        """Publisher: begins version latest+1 (see Update). Waits at most `timeout` seconds (None: no limit)
        for readers that block it, then raises WaitTimeoutError. Ctrl-C interrupts the wait (KeyboardInterrupt),
        leaving no update open."""
        topic, handle = self.handle, ctypes.c_void_p()
        try:
            call_in_slices(lambda ms: lib.wb_update_begin(topic, ms, ctypes.byref(handle)), timeout)
        except BaseException:
            if handle.value is not None:  # begun, then interrupted before Python saw it
                lib.wb_update_abort(handle)
            raise
        self._update = Update(self, handle)
        return self._update

    def publish(self, arrays: Mapping[str, Any], metadata: bytes = b"", timeout: Optional[float] = None) -> int:
        """Publisher, host tensors: one update (see update(), whose `timeout` this is) that copies each
        {name: array} into tensor `name` with numpy.copyto(casting="no") — the array's dtype must be the tensor's
        and its shape the tensor's or one that broadcasts to it — then publishes the version with `metadata`
        and returns its number. Tensors not named keep their bytes, R >= 2 included. If a copy fails (TypeError,
        ValueError, NotFoundError, or TypeError for a CUDA tensor), the update is aborted: nothing is published,
        and with R = 1 the tensors handed out before the failure leave the topic dirty (see Update.abort)."""
        import numpy

        with self.update(timeout) as u:
            for name, array in arrays.items():
                numpy.copyto(numpy.asarray(u.tensor(name)), array, casting="no")
            u.metadata = metadata
        assert u.published_version is not None
        return u.published_version

    def snapshot(self, version: int = 0, timeout: Optional[float] = None) -> Snapshot:
        """Leases `version` (0: the latest). Raises NotFoundError before the first publish, ExpiredError for a
        version no longer kept, DirtyError while an R = 1 topic is half-written. While an R = 1 update is being
        written, leasing the latest waits at most `timeout` seconds (None: no limit) for its publish
        (WaitTimeoutError); Ctrl-C interrupts that wait (KeyboardInterrupt), leaving no lease."""
        topic, handle = self.handle, ctypes.c_void_p()
        try:
            call_in_slices(lambda ms: lib.wb_snapshot_acquire(topic, version, ms, ctypes.byref(handle)), timeout)
        except BaseException:
            if handle.value is not None:  # leased, then interrupted before Python saw it
                lib.wb_snapshot_release(handle)
            raise
        return self._leased(handle)

    def wait(self, after: int = 0, timeout: Optional[float] = None) -> int:
        """Blocks until a version greater than `after` is published and returns the latest. Raises
        WaitTimeoutError (a TimeoutError) after `timeout` seconds, BrokerGoneError if the broker dies and no
        successor takes this client back within the client's timeout (a restarted broker: the wait goes on).
        Ctrl-C interrupts it (KeyboardInterrupt)."""
        topic, version = self.handle, ctypes.c_uint64()
        call_in_slices(lambda ms: lib.wb_topic_wait(topic, after, ms, ctypes.byref(version)), timeout)
        return version.value

    def notify_fd(self) -> int:
        """A file descriptor for event loops that becomes readable when there is something to do for this topic
        (see wb_topic_notify_fd): one fd for the topic's lifetime, broker restarts included, owned by the topic.
        It is an epoll instance: do not read it, call notify_ack() each time it is readable."""
        fd = ctypes.c_int()
        lib.wb_topic_notify_fd(self.handle, ctypes.byref(fd))
        return fd.value

    def notify_ack(self) -> int:
        """Call it each time notify_fd() is readable: consumes the wake-up, follows the broker across restarts,
        and returns the latest version (which need not be newer than the last one seen). Raises BrokerGoneError
        once no successor may take this client back."""
        version = ctypes.c_uint64()
        lib.wb_topic_notify_ack(self.handle, ctypes.byref(version))
        return version.value

    async def wait_async(self, after: int = 0, timeout: Optional[float] = None) -> int:
        """wait() for asyncio: suspends the coroutine, not the thread, until a version greater than `after` is
        published (loop.add_reader on the notify fd, which stays quiet while the broker restarts). Raises
        WaitTimeoutError after `timeout` seconds, BrokerGoneError as wait() does."""
        fd = self.notify_fd()  # subscribe before reading latest, so that no publish falls in between
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout_ms(timeout) / 1000
        latest = self.latest
        while latest <= after:
            remaining = None if deadline is None else max(0.0, deadline - loop.time())
            if remaining == 0.0:
                raise error_for(-12, f"topic '{self.name}': no version after {after} within {timeout} s")
            latest = await self._notified(loop, fd, remaining, latest)
        return latest

    async def _notified(self, loop: asyncio.AbstractEventLoop, fd: int, timeout: Optional[float], latest: int) -> int:
        """The latest version once the notify fd was readable and acknowledged; `latest` again at the timeout."""
        future = loop.create_future()
        if not self._async_waiters:
            loop.add_reader(fd, self._on_notify)
        self._async_waiters.add(future)
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except asyncio.TimeoutError:
            return latest  # the caller's loop sees the deadline and raises
        finally:
            self._async_waiters.discard(future)
            if not self._async_waiters:
                loop.remove_reader(fd)

    def _on_notify(self) -> None:
        """The notify fd is readable: one acknowledgement answers every coroutine waiting on it."""
        try:
            latest, error = self.notify_ack(), None
        except WeightbusError as e:
            latest, error = 0, e
        for future in list(self._async_waiters):
            if future.done():
                continue
            if error is None:
                future.set_result(latest)
            else:
                future.set_exception(error)

    # Bookkeeping of the handles made from this one ------------------------------------------------------------

    def _leased(self, handle: ctypes.c_void_p) -> Snapshot:
        """The Snapshot of a wb_snapshot * leased on this topic (by Topic.snapshot, or Armed.wait)."""
        with self._lock:
            self._live_snapshots += 1
        return Snapshot(self, handle)

    def _snapshot_freed(self) -> None:
        with self._lock:
            self._live_snapshots -= 1

    def _plan_made(self, plan: "SlicePlan") -> None:
        self._plans.add(plan)

    def _plan_closed(self, plan: "SlicePlan") -> None:
        self._plans.discard(plan)

    def _update_closed(self, update: Update) -> None:
        if self._update is update:
            self._update = None

    def _client_closing(self) -> Tuple[int, Optional[Update]]:
        return self._live_snapshots, self._update


# What arrays (NumPy, PyTorch, CuPy, JAX, weightbus.Tensor) have and descriptions of a shape and dtype lack.
_VALUE_PROTOCOLS = ("__array__", "__array_interface__", "__cuda_array_interface__", "__dlpack__")


def _without_values(name: str, definition: TensorDefinition) -> TensorDefinition:
    """alloc's definition, refused if it is an array: alloc would drop its values, which users expect to see."""
    if any(hasattr(definition, protocol) for protocol in _VALUE_PROTOCOLS):
        raise error_for(-1, f"tensor {name!r}: alloc takes a shape and a dtype, not the values of a "
                        f"{type(definition).__name__} (they would be ignored): give (array.shape, array.dtype), "
                        f"then publish the values, e.g. topic.publish({{{name!r}: array}})")
    return definition


def _shape_and_dtype(definition: TensorDefinition) -> Tuple[Tuple[int, ...], Any]:
    if hasattr(definition, "shape") and hasattr(definition, "dtype"):
        return tuple(definition.shape), definition.dtype
    shape, dtype = definition
    return tuple(shape), dtype


def _specs(definitions: Iterable[Tuple[str, Tuple[int, ...], Any]]) -> Any:
    definitions = list(definitions)
    specs = (TensorSpec * len(definitions))()
    for spec, (name, shape, dtype) in zip(specs, definitions):
        spec.struct_size = ctypes.sizeof(TensorSpec)
        spec.name, spec.dtype, spec.ndim = c_string(name), dtype_code(dtype), len(shape)
        for d, extent in enumerate(shape[: _lib.MAX_DIMS]):  # the library refuses ndim > MAX_DIMS itself
            spec.shape[d] = extent
    return specs


def _shard_specs(shards: Sequence[ShardDefinition]) -> Any:
    specs = (ShardSpec * len(shards))()
    for spec, shard in zip(specs, shards):
        name, logical = shard["name"], tuple(shard["logical_shape"])
        tensor = shard.get("tensor")
        dtype = tensor.dtype if tensor is not None else shard["dtype"]
        replicated = bool(shard.get("replicated", False))
        default_extent = logical if replicated else None
        extent = tuple(tensor.shape) if tensor is not None else tuple(shard.get("extent", default_extent) or ())
        offset = tuple(shard.get("offset") or (0,) * len(logical))
        if not (len(extent) == len(offset) == len(logical)) or len(logical) > _lib.MAX_DIMS:
            raise error_for(-7, f"shard of {name!r}: logical_shape {list(logical)}, offset {list(offset)} and "
                            f"extent {list(extent)} need the same number of dimensions, at most {_lib.MAX_DIMS}")
        spec.struct_size = ctypes.sizeof(ShardSpec)
        spec.name, spec.dtype, spec.ndim = c_string(name), dtype_code(dtype), len(logical)
        spec.flags = 1 if replicated else 0  # WB_SHARD_REPLICATED
        for d in range(len(logical)):
            spec.logical_shape[d], spec.offset[d], spec.extent[d] = logical[d], offset[d], extent[d]
    return specs


def _cuda_ordinal(device: Any) -> Optional[int]:
    """None for host memory, else the CUDA ordinal of "cuda:N", N or a torch.device."""
    if device is None or str(device) == "cpu":
        return None
    if isinstance(device, int):
        return device
    text = str(device)
    if text == "cuda":
        return 0
    if text.startswith("cuda:") and text[5:].isdigit():
        return int(text[5:])
    raise ValueError(f"unknown device {device!r}: use None, 'cpu', 'cuda:N' or N")


def _as_list(value: Any) -> list:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _contiguous_strides(shape: Sequence[int]) -> List[int]:
    strides, step = [], 1
    for extent in reversed(shape):
        strides.append(step)
        step *= extent
    return list(reversed(strides))
