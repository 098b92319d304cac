"""Plain descriptions returned by listings: topics, clients and tensor layouts."""
from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Tuple

from . import _lib
from .dtypes import name_of_code


@dataclass(frozen=True)
class TopicInfo:
    name: str
    replicas: int
    latest: int          # 0 before the first publish
    tensor_count: int    # tensors and views
    publisher_pid: int   # 0 when no publisher is attached
    dirty: bool          # True while snapshots fail with DirtyError
    bytes: int           # storage of all replicas
    ranks: int = 0       # 0: a plain topic; N: sharded over N ranks
    layout_complete: bool = False  # sharded: every rank sealed and the shards cover every tensor

    @classmethod
    def _from_c(cls, info: _lib.TopicInfo) -> "TopicInfo":
        return cls(info.name.decode(), info.replicas, info.latest, info.tensor_count, info.publisher_pid,
                   bool(info.dirty), info.bytes, info.ranks, bool(info.layout_complete))


@dataclass(frozen=True)
class RankInfo:
    """One rank of a sharded topic (Topic.rank_info)."""
    rank: int
    pid: int            # its publisher's process, 0 when none is attached
    sealed: bool
    shards: int
    dirty: bool         # R = 1: its shards left half-written
    published: int      # the last version it published (0: none); above latest while others lag
    writing: int        # the version it is writing, 0 when none
    published_ns: int   # when it last published (CLOCK_REALTIME), 0: never
    begin_ns: int       # when it last began a version (CLOCK_REALTIME), 0: never
    bytes: int          # storage of its shards, all replicas

    @classmethod
    def _from_c(cls, info: _lib.RankInfo) -> "RankInfo":
        return cls(info.rank, info.pid, bool(info.sealed), info.shards, bool(info.dirty), info.published,
                   info.writing, info.published_ns, info.begin_ns, info.bytes)


@dataclass(frozen=True)
class ClientInfo:
    id: int
    pid: int
    name: str
    topics_published: int
    leases: int

    @classmethod
    def _from_c(cls, info: _lib.ClientInfo) -> "ClientInfo":
        return cls(info.id, info.pid, info.name.decode(errors="replace"), info.topics_published, info.leases)


@dataclass(frozen=True)
class LeaseInfo:
    """A lease held by an attached client (Client.leases())."""
    client_id: int
    pid: int
    topic: str
    version: int
    latest: int     # the topic's latest version when listed: the lag is latest - version
    held_ns: int    # time since the lease was acquired

    @classmethod
    def _from_c(cls, info: _lib.LeaseInfo) -> "LeaseInfo":
        return cls(info.client_id, info.pid, info.topic.decode(), info.version, info.latest, info.held_ns)


@dataclass(frozen=True)
class TensorLayout:
    """A tensor's definition in its topic (no bytes): what Topic.layout() lists."""
    index: int
    name: str
    dtype: str
    shape: Tuple[int, ...]
    strides: Tuple[int, ...]   # elements
    nbytes: int
    version: int               # the latest version that wrote it (0: never)
    device: str                # "cpu" or "cuda" (the GPU's ordinal depends on the reading process)
    is_view: bool

    @classmethod
    def _from_c(cls, info: _lib.TensorInfo) -> "TensorLayout":
        return cls(info.index, info.name.decode(), name_of_code(info.dtype), tuple(info.shape[: info.ndim]),
                   tuple(info.strides[: info.ndim]), info.nbytes, info.version,
                   "cuda" if info.device_type == 2 else "cpu", bool(info.is_view))


def listing(call, handle: ctypes.c_void_p, struct: type) -> list:
    """Runs a wb_list_* call, growing the array until every entry fits."""
    capacity = 16
    while True:
        array = (struct * capacity)()
        for entry in array:
            entry.struct_size = ctypes.sizeof(struct)
        count = ctypes.c_uint32()
        call(handle, array, capacity, ctypes.byref(count))
        if count.value <= capacity:
            return list(array[: count.value])
        capacity = count.value
