"""DLPack capsules around the structs that libweightbus exports: DLManagedTensor in a "dltensor" capsule, DLPack
1.x's DLManagedTensorVersioned in a "dltensor_versioned" one.

A consumer (torch.from_dlpack, np.from_dlpack, cupy.from_dlpack) takes the capsule, renames it to
"used_dltensor" (or "used_dltensor_versioned") and calls the struct's deleter when its array dies. A capsule
nobody consumed calls the deleter itself when it is collected: that is what the destructors below do.
"""
from __future__ import annotations

import ctypes
from typing import Any, Callable, Dict

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
    return _new(address, capsule_name, _destructors[capsule_name])  # from here on, the capsule owns it
