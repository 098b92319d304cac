"""DLPack capsules around the structs that libweightbus exports: DLManagedTensor in a "dltensor" capsule, DLPack
1.x's DLManagedTensorVersioned in a "dltensor_versioned" one.

A consumer (torch.from_dlpack, np.from_dlpack, cupy.from_dlpack) takes the capsule, renames it to
"used_dltensor" (or "used_dltensor_versioned") and calls the struct's deleter when its array dies. A capsule
nobody consumed calls the deleter itself when it is collected: that is what the destructors below do.

A consumer that refuses a capsule (a dtype it lacks) drops it while its own exception is pending, and a Python
destructor cannot run then (each call it makes fails on the pending exception): the struct, and the lease it
holds, would leak. So this module keeps a reference to every capsule it hands out, and drops the ones nobody
else holds any more (sweep) at its next export, when a snapshot is released and after each garbage collection
(which never runs with an exception pending): their destructors run then.
"""
from __future__ import annotations

import ctypes
import gc
import struct
import sys
import threading
from typing import Any, Callable, Dict, List, Tuple

from ._lib import DLManagedTensor, DLManagedTensorVersioned
from .errors import c_string

_CapsuleDestructor = ctypes.CFUNCTYPE(None, ctypes.c_void_p)

# Private function objects (indexing makes new ones): attribute access on ctypes.pythonapi returns shared
# objects whose argtypes any other module may change.
_new = ctypes.pythonapi["PyCapsule_New"]
_new.argtypes = [ctypes.c_void_p, ctypes.c_char_p, _CapsuleDestructor]
_new.restype = ctypes.py_object
_is_valid = ctypes.pythonapi["PyCapsule_IsValid"]
_is_valid.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
_is_valid.restype = ctypes.c_int
_get_pointer = ctypes.pythonapi["PyCapsule_GetPointer"]
_get_pointer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
_get_pointer.restype = ctypes.c_void_p

# Capsule name -> the struct it holds. The names live as long as the module: capsules point at them.
_STRUCTS: Dict[bytes, type] = {b"dltensor": DLManagedTensor, b"dltensor_versioned": DLManagedTensorVersioned}


def _destructor(name: bytes) -> Any:
    struct = _STRUCTS[name]

    def destroy_unconsumed(capsule: int) -> None:
        if not _is_valid(capsule, name):  # renamed "used_...": the consumer owns the struct now
            return
        managed = ctypes.cast(_get_pointer(capsule, name), ctypes.POINTER(struct))
        managed.contents.deleter(ctypes.cast(managed, ctypes.c_void_p))

    return _CapsuleDestructor(destroy_unconsumed)


# Kept for the life of the module: capsules point at them.
_destructors = {name: _destructor(name) for name in _STRUCTS}

# Every capsule handed out that someone else may still hold (see the module's doc).
_handed: List[Any] = []
_handed_lock = threading.Lock()


def _counts(items: List[Any]) -> List[int]:
    return [sys.getrefcount(item) for item in items]


# What _counts says of an object that only its list holds (the list's reference, the loop's, getrefcount's
# argument's: as this Python counts them).
_ALONE = _counts([object()])[0]


def sweep(blocking: bool = True) -> None:
    """Drops the capsules nobody else holds: consumed ones (their destructor does nothing) and refused ones
    (their destructor calls the deleter, which ends their lease). blocking=False: not if a sweep is under way
    (a collection may come in the middle of one, on its thread)."""
    if not _handed_lock.acquire(blocking):
        return
    try:
        counts = _counts(_handed)
        dropped = [c for c, n in zip(_handed, counts) if n <= _ALONE]
        if dropped:
            _handed[:] = [c for c, n in zip(_handed, counts) if n > _ALONE]
    finally:
        _handed_lock.release()
    del dropped  # outside the lock: a deleter may call back into this module


def _after_collection(phase: str, info: Dict[str, int]) -> None:
    if phase == "stop":
        sweep(blocking=False)


gc.callbacks.append(_after_collection)


def _hand_out(address: Any, name: bytes) -> Any:
    sweep()
    capsule = _new(address, name, _destructors[name])
    with _handed_lock:
        _handed.append(capsule)
    return capsule


def export(function: Callable, handle: Any, name: str, versioned: bool) -> Any:
    """Calls a C export (wb_snapshot_dlpack[_versioned], wb_update_dlpack[_versioned]) for tensor `name` and
    returns the capsule that owns what it exported."""
    capsule_name = b"dltensor_versioned" if versioned else b"dltensor"
    managed = ctypes.POINTER(_STRUCTS[capsule_name])()
    try:
        function(handle, c_string(name), ctypes.byref(managed))
        address = ctypes.cast(managed, ctypes.c_void_p)
    except BaseException:  # e.g. a KeyboardInterrupt raised once the export was made: nothing owns it yet
        if managed:
            managed.contents.deleter(ctypes.cast(managed, ctypes.c_void_p))
        raise
    return _hand_out(address, capsule_name)  # from here on, the capsule owns it


# A shard has no name the C exports take (they export whole tensors by name), so its DLPack struct is made here
# from the Tensor's description. The struct, its shape and strides, and the Tensor (whose life keeps the
# version leased) stay in _made until the consumer calls the deleter.
_DL_TYPES = {"bool": (6, 8), "u8": (1, 8), "i8": (0, 8), "i16": (0, 16), "i32": (0, 32), "i64": (0, 64),
             "f16": (2, 16), "bf16": (4, 16), "f32": (2, 32), "f64": (2, 64), "u16": (1, 16), "u32": (1, 32),
             "u64": (1, 64)}
_made: Dict[int, Any] = {}


def _free_made(address: int) -> None:
    _made.pop(address, None)


_made_deleter = DLManagedTensor._fields_[2][1](_free_made)


def export_described(tensor: Any, device: tuple) -> Any:
    """A legacy "dltensor" capsule of `tensor` (a weightbus.Tensor) made from its attributes."""
    if tensor.dtype not in _DL_TYPES:
        raise BufferError(f"{tensor.name!r} is {tensor.dtype}, which this DLPack export has no type code for")
    ndim = len(tensor.shape)
    shape, strides = (ctypes.c_int64 * max(1, ndim))(*tensor.shape), (ctypes.c_int64 * max(1, ndim))(*tensor.strides)
    managed = DLManagedTensor()
    dl = managed.dl_tensor
    dl.data, dl.ndim, dl.byte_offset = tensor.data_ptr or None, ndim, 0
    dl.device.device_type, dl.device.device_id = device
    dl.dtype.code, dl.dtype.bits = _DL_TYPES[tensor.dtype]
    dl.dtype.lanes = 1
    dl.shape = ctypes.cast(shape, ctypes.POINTER(ctypes.c_int64))
    dl.strides = ctypes.cast(strides, ctypes.POINTER(ctypes.c_int64))
    managed.deleter = _made_deleter
    address = ctypes.addressof(managed)
    _made[address] = (managed, shape, strides, tensor)
    return _hand_out(address, b"dltensor")


# A run of memory as one 1-D uint8 tensor, the base that torch views of many tensors share (weightbus.torch's
# snapshot_tensors): a DLManagedTensor followed by its shape and strides, written with one pack_into rather than
# a ctypes access per field (a few microseconds each time: this runs once per region of every version).
_REGION = struct.Struct("<QiiiBBHQQQQQqq")
assert _REGION.size == ctypes.sizeof(DLManagedTensor) + 16
_made_deleter_address = ctypes.cast(_made_deleter, ctypes.c_void_p).value


def export_region(data: int, nbytes: int, device: Tuple[int, int], owner: Any) -> Any:
    """A legacy "dltensor" capsule of the `nbytes` bytes at `data` on DLPack device `device`, as uint8. `owner`
    is kept until the consumer calls the deleter (or the capsule, unconsumed, is collected)."""
    record = ctypes.create_string_buffer(_REGION.size)
    address = ctypes.addressof(record)
    shape = address + ctypes.sizeof(DLManagedTensor)
    _REGION.pack_into(record, 0, data, device[0], device[1], 1, 1, 8, 1, shape, shape + 8, 0, 0,
                      _made_deleter_address, nbytes, 1)
    _made[address] = (record, owner)
    return _hand_out(address, b"dltensor")
