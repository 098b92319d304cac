"""DLPack capsules around the DLManagedTensor structs that libweightbus exports.

A consumer (torch.from_dlpack, np.from_dlpack, cupy.from_dlpack) takes the capsule, renames it to
"used_dltensor" and calls the struct's deleter when its array dies. A capsule nobody consumed calls the deleter
itself when it is collected: that is what the destructor below does.
"""
from __future__ import annotations

import ctypes
from typing import Any

from ._lib import DLManagedTensor

_NAME = b"dltensor"
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


def _destroy_unconsumed(capsule: int) -> None:
    if not _is_valid(capsule, _NAME):  # renamed to "used_dltensor": the consumer owns the struct now
        return
    managed = ctypes.cast(_get_pointer(capsule, _NAME), ctypes.POINTER(DLManagedTensor))
    managed.contents.deleter(ctypes.cast(managed, ctypes.c_void_p))


# Kept for the life of the module: capsules point at it.
_destructor = _CapsuleDestructor(_destroy_unconsumed)


def capsule(managed: "ctypes._Pointer[DLManagedTensor]") -> Any:
    """Wraps an exported DLManagedTensor into a "dltensor" PyCapsule that owns it."""
    return _new(ctypes.cast(managed, ctypes.c_void_p), _NAME, _destructor)
