"""Loads libweightbus and declares its C ABI for ctypes: structs, prototypes and error checking.

The structs mirror include/weightbus/weightbus.h field by field; tests/test_layout_matches_the_header.py compares
them with what the C compiler sees (tests/bindings/layout-dump).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
from pathlib import Path
from typing import Any, Callable, List

from .errors import LibraryNotFoundError, error_for

NAME_MAX = 255
MAX_DIMS = 8
MAX_REPLICAS = 4
METADATA_MAX = 4096
VERSION_MAX = (1 << 48) - 1
# WB_SCALE_*: where a conversion into FP8 puts its scales (weightbus.convert names them).
SCALE_NONE, SCALE_TENSOR, SCALE_CHANNEL, SCALE_BLOCK = 0, 1, 2, 3
# The binding speaks this major.minor of the C library (wb_version() = major * 10000 + minor * 100 + patch).
ABI_VERSION = (0, 1)

c_int64_dims = ctypes.c_int64 * MAX_DIMS


class AttachOptions(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint32), ("socket_path", ctypes.c_char_p),
                ("broker_name", ctypes.c_char_p), ("client_name", ctypes.c_char_p), ("timeout_ms", ctypes.c_int64)]


class TopicOptions(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint32), ("replicas", ctypes.c_uint32)]


class TopicInfo(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint32), ("replicas", ctypes.c_uint32),
                ("name", ctypes.c_char * (NAME_MAX + 1)), ("latest", ctypes.c_uint64),
                ("tensor_count", ctypes.c_uint32), ("publisher_pid", ctypes.c_uint32), ("dirty", ctypes.c_uint32),
                ("reserved", ctypes.c_uint32), ("bytes", ctypes.c_uint64), ("ranks", ctypes.c_uint32),
                ("layout_complete", ctypes.c_uint32), ("published_ns", ctypes.c_uint64)]


class TensorSpec(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint32), ("dtype", ctypes.c_int32), ("name", ctypes.c_char_p),
                ("ndim", ctypes.c_uint32), ("reserved", ctypes.c_uint32), ("shape", c_int64_dims)]


class ViewSpec(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint32), ("dtype", ctypes.c_int32), ("name", ctypes.c_char_p),
                ("parent", ctypes.c_char_p), ("byte_offset", ctypes.c_uint64), ("ndim", ctypes.c_uint32),
                ("reserved", ctypes.c_uint32), ("shape", c_int64_dims), ("strides", c_int64_dims)]


class TensorInfo(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint32), ("index", ctypes.c_uint32), ("name", ctypes.c_char_p),
                ("dtype", ctypes.c_int32), ("ndim", ctypes.c_uint32), ("shape", c_int64_dims),
                ("strides", c_int64_dims), ("nbytes", ctypes.c_uint64), ("data", ctypes.c_void_p),
                ("version", ctypes.c_uint64), ("device_type", ctypes.c_int32), ("is_view", ctypes.c_uint32),
                ("device_uuid", ctypes.c_uint8 * 16)]


class CopyTarget(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint32), ("index", ctypes.c_uint32), ("name", ctypes.c_char_p),
                ("dst", ctypes.c_void_p), ("dst_bytes", ctypes.c_uint64), ("device", ctypes.c_int32),
                ("dtype", ctypes.c_int32), ("scale_layout", ctypes.c_uint32), ("block_rows", ctypes.c_uint32),
                ("block_cols", ctypes.c_uint32), ("reserved", ctypes.c_uint32), ("scale", ctypes.c_void_p),
                ("scale_bytes", ctypes.c_uint64)]


class RankOptions(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint32), ("replicas", ctypes.c_uint32), ("rank", ctypes.c_uint32),
                ("ranks", ctypes.c_uint32)]


class ShardSpec(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint32), ("dtype", ctypes.c_int32), ("name", ctypes.c_char_p),
                ("ndim", ctypes.c_uint32), ("flags", ctypes.c_uint32), ("logical_shape", ctypes.c_int64 * MAX_DIMS),
                ("offset", ctypes.c_int64 * MAX_DIMS), ("extent", ctypes.c_int64 * MAX_DIMS)]


class RankInfo(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint32), ("rank", ctypes.c_uint32), ("pid", ctypes.c_uint32),
                ("sealed", ctypes.c_uint32), ("shards", ctypes.c_uint32), ("dirty", ctypes.c_uint32),
                ("published", ctypes.c_uint64), ("writing", ctypes.c_uint64), ("published_ns", ctypes.c_uint64),
                ("begin_ns", ctypes.c_uint64), ("bytes", ctypes.c_uint64)]


class SlicePart(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint32), ("ndim", ctypes.c_uint32), ("name", ctypes.c_char_p),
                ("offset", ctypes.c_int64 * MAX_DIMS), ("extent", ctypes.c_int64 * MAX_DIMS), ("pad", ctypes.c_int64)]


class SliceDest(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint32), ("device", ctypes.c_int32), ("first_part", ctypes.c_uint32),
                ("part_count", ctypes.c_uint32), ("concat_dim", ctypes.c_uint32), ("ndim", ctypes.c_uint32),
                ("shape", ctypes.c_int64 * MAX_DIMS), ("strides", ctypes.c_int64 * MAX_DIMS),
                ("dtype", ctypes.c_int32), ("scale_layout", ctypes.c_uint32), ("dst", ctypes.c_void_p),
                ("dst_bytes", ctypes.c_uint64), ("block_rows", ctypes.c_uint32), ("block_cols", ctypes.c_uint32),
                ("scale", ctypes.c_void_p), ("scale_bytes", ctypes.c_uint64)]


class PlanInfo(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint32), ("dests", ctypes.c_uint32), ("copies", ctypes.c_uint32),
                ("copies_2d", ctypes.c_uint32), ("bytes", ctypes.c_uint64), ("pad_bytes", ctypes.c_uint64),
                ("arms", ctypes.c_uint64), ("gpu_arms", ctypes.c_uint64), ("gpu_arms_claimed", ctypes.c_uint64)]


class ClientInfo(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint32), ("id", ctypes.c_uint32), ("pid", ctypes.c_uint32),
                ("topics_published", ctypes.c_uint32), ("leases", ctypes.c_uint32), ("reserved", ctypes.c_uint32),
                ("name", ctypes.c_char * 32)]


class LeaseInfo(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_uint32), ("client_id", ctypes.c_uint32), ("pid", ctypes.c_uint32),
                ("reserved", ctypes.c_uint32), ("topic", ctypes.c_char * (NAME_MAX + 1)),
                ("version", ctypes.c_uint64), ("latest", ctypes.c_uint64), ("held_ns", ctypes.c_uint64)]


class BrokerInfo(ctypes.Structure):
    _fields_ = ([("struct_size", ctypes.c_uint32), ("pid", ctypes.c_uint32), ("version", ctypes.c_uint32),
                 ("reserved", ctypes.c_uint32), ("name", ctypes.c_char * (NAME_MAX + 1)),
                 ("segment", ctypes.c_char * (NAME_MAX + 1)), ("started_ns", ctypes.c_uint64),
                 ("created_ns", ctypes.c_uint64)] +
                [(name, ctypes.c_uint32) for name in ("topics", "max_topics", "tensors", "max_tensors", "allocations",
                                                      "max_allocations", "clients", "max_clients", "ranks", "max_ranks",
                                                      "leases_per_client", "ring_slots")] +
                [(name, ctypes.c_uint64) for name in ("publishes", "reclaims", "reclaimed_leases", "adoptions")])


# DLPack (dlpack.h): DLManagedTensor is the same from DLPack 0.6 to 1.x; DLManagedTensorVersioned is DLPack 1.x's
# (include/weightbus/dlpack_versioned.h), with the layout DLPack publishes as its ABI (tests/test_dlpack.py).
class DLDevice(ctypes.Structure):
    _fields_ = [("device_type", ctypes.c_int32), ("device_id", ctypes.c_int32)]


class DLDataType(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint8), ("bits", ctypes.c_uint8), ("lanes", ctypes.c_uint16)]


class DLTensor(ctypes.Structure):
    _fields_ = [("data", ctypes.c_void_p), ("device", DLDevice), ("ndim", ctypes.c_int32), ("dtype", DLDataType),
                ("shape", ctypes.POINTER(ctypes.c_int64)), ("strides", ctypes.POINTER(ctypes.c_int64)),
                ("byte_offset", ctypes.c_uint64)]


DLDeleter = ctypes.CFUNCTYPE(None, ctypes.c_void_p)


class DLManagedTensor(ctypes.Structure):
    _fields_ = [("dl_tensor", DLTensor), ("manager_ctx", ctypes.c_void_p), ("deleter", DLDeleter)]


class DLPackVersion(ctypes.Structure):
    _fields_ = [("major", ctypes.c_uint32), ("minor", ctypes.c_uint32)]


class DLManagedTensorVersioned(ctypes.Structure):
    _fields_ = [("version", DLPackVersion), ("manager_ctx", ctypes.c_void_p), ("deleter", DLDeleter),
                ("flags", ctypes.c_uint64), ("dl_tensor", DLTensor)]


def new(struct: type) -> Any:
    """A struct with struct_size set, as the C ..._INIT macros do."""
    value = struct()
    value.struct_size = ctypes.sizeof(struct)
    return value


def _candidates() -> List[str]:
    """Where the library is looked for, in order: $WEIGHTBUS_LIBRARY, next to this package, the system loader."""
    env = os.environ.get("WEIGHTBUS_LIBRARY")
    if env:
        return [env]  # an explicit choice is never silently replaced by another library
    here = Path(__file__).resolve().parent
    found = [str(here / name) for name in ("libweightbus.so.0", "libweightbus.so") if (here / name).exists()]
    return found + ["libweightbus.so.0", ctypes.util.find_library("weightbus") or "libweightbus.so"]


def _load() -> ctypes.CDLL:
    tried = []
    for candidate in _candidates():
        try:
            return ctypes.CDLL(candidate)
        except OSError as e:
            tried.append(f"  {candidate}: {e}")
    raise LibraryNotFoundError(
        "weightbus: cannot load libweightbus. Tried:\n" + "\n".join(tried) +
        "\nInstall the C library (cmake --install BUILD_DIR), copy libweightbus.so.0 next to the weightbus "
        "package, or set WEIGHTBUS_LIBRARY to its path.")


def _check(rc: int, func: Callable, args: tuple) -> int:
    if rc != 0:
        raise error_for(rc, lib.wb_last_error().decode("utf-8", "replace"))
    return rc


lib = _load()

_P = ctypes.c_void_p
_u32, _i32, _u64, _i64, _char = ctypes.c_uint32, ctypes.c_int32, ctypes.c_uint64, ctypes.c_int64, ctypes.c_char_p
_pu32, _pu64, _pi32 = ctypes.POINTER(_u32), ctypes.POINTER(_u64), ctypes.POINTER(_i32)
_pi64 = ctypes.POINTER(_i64)
_pp = ctypes.POINTER(_P)

# name: argument types; every one returns int checked by _check.
_CHECKED = {
    "wb_default_socket_path": [_char, _char, ctypes.c_size_t],
    "wb_attach": [ctypes.POINTER(AttachOptions), _pp],
    "wb_detach": [_P],
    "wb_client_id": [_P, _pu32],
    "wb_topic_create": [_P, _char, ctypes.POINTER(TopicOptions), _pp],
    "wb_topic_open": [_P, _char, _pp],
    "wb_topic_close": [_P],
    "wb_topic_remove": [_P, _char],
    "wb_topic_get_info": [_P, ctypes.POINTER(TopicInfo)],
    "wb_list_topics": [_P, ctypes.POINTER(TopicInfo), _u32, _pu32],
    "wb_tensor_alloc": [_P, ctypes.POINTER(TensorSpec), _u32],
    "wb_tensor_view": [_P, ctypes.POINTER(ViewSpec)],
    "wb_topic_tensor_count": [_P, _pu32],
    "wb_topic_tensor": [_P, _u32, ctypes.POINTER(TensorInfo)],
    "wb_update_begin": [_P, _i64, _pp],
    "wb_update_version": [_P, _pu64],
    "wb_update_tensor": [_P, _char, ctypes.POINTER(TensorInfo)],
    "wb_update_publish": [_P, _P, _u32, _pu64],
    "wb_update_abort": [_P],
    "wb_topic_latest": [_P, _pu64],
    "wb_topic_wait": [_P, _u64, _i64, _pu64],
    "wb_topic_notify_fd": [_P, ctypes.POINTER(ctypes.c_int)],
    "wb_topic_notify_ack": [_P, _pu64],
    "wb_snapshot_acquire": [_P, _u64, _i64, _pp],
    "wb_snapshot_release": [_P],
    "wb_snapshot_version": [_P, _pu64],
    "wb_snapshot_metadata": [_P, _pp, _pu32, _pu64],
    "wb_snapshot_tensor": [_P, _char, ctypes.POINTER(TensorInfo)],
    "wb_snapshot_tensor_at": [_P, _u32, ctypes.POINTER(TensorInfo)],
    "wb_snapshot_tensors": [_P, ctypes.POINTER(TensorInfo), _u32, _pu32],
    "wb_snapshot_place": [_P, _pu64],
    "wb_snapshot_dlpack": [_P, _char, ctypes.POINTER(ctypes.POINTER(DLManagedTensor))],
    "wb_update_dlpack": [_P, _char, ctypes.POINTER(ctypes.POINTER(DLManagedTensor))],
    "wb_snapshot_dlpack_versioned": [_P, _char, ctypes.POINTER(ctypes.POINTER(DLManagedTensorVersioned))],
    "wb_update_dlpack_versioned": [_P, _char, ctypes.POINTER(ctypes.POINTER(DLManagedTensorVersioned))],
    "wb_cuda_init": [],
    "wb_cuda_device_uuid": [_i32, ctypes.POINTER(ctypes.c_uint8 * 16)],
    "wb_cuda_device_ordinal": [ctypes.POINTER(ctypes.c_uint8 * 16), _pi32],
    "wb_tensor_alloc_cuda": [_P, ctypes.POINTER(TensorSpec), _u32, _i32],
    "wb_tensor_register_cuda": [_P, ctypes.POINTER(TensorSpec), _pp, _u32],
    "wb_tensor_revoke": [_P, _char, _i64],
    "wb_update_publish_on_stream": [_P, _P, _P, _u32, _pu64],
    "wb_snapshot_wait_stream": [_P, _P],
    "wb_snapshot_synchronize": [_P, _i64],
    "wb_snapshot_copy_into": [_P, ctypes.POINTER(CopyTarget), _u32, _P],
    "wb_list_clients": [_P, ctypes.POINTER(ClientInfo), _u32, _pu32],
    "wb_list_leases": [_P, ctypes.POINTER(LeaseInfo), _u32, _pu32],
    "wb_broker_get_info": [_P, ctypes.POINTER(BrokerInfo)],
    "wb_topic_create_rank": [_P, _char, ctypes.POINTER(RankOptions), _pp],
    "wb_shard_alloc": [_P, ctypes.POINTER(ShardSpec), _u32],
    "wb_shard_alloc_cuda": [_P, ctypes.POINTER(ShardSpec), _u32, _i32],
    "wb_shard_register_cuda": [_P, ctypes.POINTER(ShardSpec), _pp, _u32],
    "wb_topic_seal_rank": [_P, _i64],
    "wb_topic_rank_info": [_P, _u32, ctypes.POINTER(RankInfo)],
    "wb_topic_shard": [_P, _char, _u32, _u32, ctypes.POINTER(ShardSpec)],
    "wb_update_shard": [_P, _char, _u32, ctypes.POINTER(TensorInfo)],
    "wb_snapshot_shard": [_P, _char, _u32, _u32, ctypes.POINTER(TensorInfo)],
    "wb_plan_create": [_P, ctypes.POINTER(SliceDest), _u32, ctypes.POINTER(SlicePart), _u32, _pp],
    "wb_plan_run": [_P, _P, _P],
    "wb_plan_get_info": [_P, ctypes.POINTER(PlanInfo)],
    "wb_plan_arm": [_P, _u64, _P, _pp],
    "wb_armed_wait": [_P, _i64, _pp],
    "wb_armed_version": [_P, _pu64],
    "wb_armed_on_stream": [_P, _pi32],
    "wb_armed_release": [_P],
    "wb_split": [_i64, _u32, _u32, _u32, _pi64, _pi64],
    "wb_split_vocab": [_i64, _i64, _u32, _u32, _pi64, _pi64, _pi64],
    "wb_parts_qkv": [_char, _char, _char, _i64, _i64, _i64, _i64, _u32, _u32, ctypes.POINTER(SlicePart)],
    "wb_parts_merged": [ctypes.POINTER(_char), _pi64, _u32, _i64, _u32, _u32, ctypes.POINTER(SlicePart)],
}

for _name, _argtypes in _CHECKED.items():
    _fn = getattr(lib, _name)
    _fn.argtypes = _argtypes
    _fn.restype = ctypes.c_int
    _fn.errcheck = _check

lib.wb_plan_destroy.argtypes, lib.wb_plan_destroy.restype = [_P], None
lib.wb_version.argtypes, lib.wb_version.restype = [], _u32
lib.wb_version_string.argtypes, lib.wb_version_string.restype = [], _char
lib.wb_strerror.argtypes, lib.wb_strerror.restype = [ctypes.c_int], _char
lib.wb_last_error.argtypes, lib.wb_last_error.restype = [], _char
lib.wb_dtype_size.argtypes, lib.wb_dtype_size.restype = [_i32], _u32
lib.wb_dtype_name.argtypes, lib.wb_dtype_name.restype = [_i32], _char

if lib.wb_version() // 100 != ABI_VERSION[0] * 100 + ABI_VERSION[1]:
    raise LibraryNotFoundError(
        f"weightbus: the loaded libweightbus is version {lib.wb_version_string().decode()}, this package needs "
        f"{ABI_VERSION[0]}.{ABI_VERSION[1]}.x; point WEIGHTBUS_LIBRARY at a matching build")


def timeout_ms(seconds: float | None) -> int:
    """Python timeouts are seconds (None: no limit); the C library's are milliseconds (negative: no limit)."""
    if seconds is None:
        return -1
    if seconds < 0:
        raise ValueError(f"timeout must be None or >= 0 seconds, not {seconds}")
    return int(round(seconds * 1000))
