"""Every tensor of a snapshot in one C call (wb_snapshot_tensors), read without a ctypes access per field; and
where they lie as a number (wb_snapshot_place), for callers that would read them only to see that they stayed.

What a tensor is (name, dtype, shape, strides, device) is the topic's and does not change between versions: its
tensors and views are listed in an append-only order, so the first `count` of them stay what they are. It is
decoded once per topic and count (TensorTable). What a version changes is where each tensor's bytes are: the
data pointers, read out of the C array as one strided memoryview.
"""
from __future__ import annotations

import ctypes
import weakref
from typing import TYPE_CHECKING, Any, List, Tuple

from ._lib import TensorInfo, lib
from .dtypes import itemsize, name_of_code
from .errors import InvalidArgumentError
from .tensor import _DEVICE_CUDA, _ordinal

if TYPE_CHECKING:
    from .snapshot import Snapshot
    from .topic import Topic

_WORDS = ctypes.sizeof(TensorInfo) // 8  # the array read as 64-bit words: one row per tensor
_DATA_WORD = TensorInfo.data.offset // 8
assert ctypes.sizeof(TensorInfo) % 8 == 0 and TensorInfo.data.offset % 8 == 0
_E_SIZE = -8


class TensorTable:
    """The first `count` tensors and views of a topic, in topic order, as parallel tuples: names, dtypes
    (weightbus's names), shapes, strides (elements), devices ("cpu" or "cuda:N", the ordinal in this process) and
    extents (the bytes each one spans from its first element: 0 for an empty tensor)."""

    def __init__(self, infos: Any, count: int) -> None:
        rows = infos[:count]
        self.count = count
        self.names: Tuple[str, ...] = tuple(info.name.decode() for info in rows)
        self.dtypes: Tuple[str, ...] = tuple(name_of_code(info.dtype) for info in rows)
        self.shapes: Tuple[Tuple[int, ...], ...] = tuple(tuple(info.shape[: info.ndim]) for info in rows)
        self.strides: Tuple[Tuple[int, ...], ...] = tuple(tuple(info.strides[: info.ndim]) for info in rows)
        self.devices: Tuple[str, ...] = tuple(
            f"cuda:{_ordinal(bytes(info.device_uuid))}" if info.device_type == _DEVICE_CUDA else "cpu" for info in rows)
        self.extents: Tuple[int, ...] = tuple(_extent(*row) for row in zip(self.shapes, self.strides, self.dtypes))


def _extent(shape: Tuple[int, ...], strides: Tuple[int, ...], dtype: str) -> int:
    if 0 in shape:
        return 0
    return (sum((n - 1) * s for n, s in zip(shape, strides)) + 1) * itemsize(dtype)


# Per topic handle: its last table (weak, so that a closed topic's goes with it).
_TABLES: "weakref.WeakKeyDictionary[Topic, TensorTable]" = weakref.WeakKeyDictionary()


def read(snapshot: "Snapshot") -> Tuple[TensorTable, List[int], bytes]:
    """The snapshot's table, its data pointers in topic order, and those pointers as bytes (a key that tells
    whether a version's tensors lie where another's did). One C call for the pointers, and one for the count.
    The caller holds snapshot._lock, the snapshot open."""
    handle, count = snapshot._handle, ctypes.c_uint32()
    while True:
        lib.wb_snapshot_tensors(handle, None, 0, ctypes.byref(count))
        infos = (TensorInfo * max(1, count.value))()
        infos[0].struct_size = ctypes.sizeof(TensorInfo)
        try:
            lib.wb_snapshot_tensors(handle, infos, count.value, ctypes.byref(count))
            break
        except InvalidArgumentError as e:
            if e.code != _E_SIZE:  # WB_E_SIZE: a view was added between the two calls; count again
                raise
    table = _TABLES.get(snapshot.topic)
    if table is None or table.count != count.value:
        table = TensorTable(infos, count.value)
        _TABLES[snapshot.topic] = table
    words = memoryview(infos).cast("B").cast("Q")[_DATA_WORD: count.value * _WORDS: _WORDS]
    return table, words.tolist(), words.tobytes()


def place(snapshot: "Snapshot") -> Tuple[int, int]:
    """(wb_snapshot_place, the topic's tensor count): equal pairs with a nonzero place mean tensors at the same
    addresses (read them once, before the table). The caller holds snapshot._lock, the snapshot open."""
    where, count = ctypes.c_uint64(), ctypes.c_uint32()
    lib.wb_snapshot_place(snapshot._handle, ctypes.byref(where))
    lib.wb_snapshot_tensors(snapshot._handle, None, 0, ctypes.byref(count))
    return where.value, count.value
