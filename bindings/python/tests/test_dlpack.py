"""DLPack and the array interfaces: dtype codes (bf16 and fp8 included), who holds the version's lease, and
clear errors where NumPy has no type."""
import ctypes
import gc

import numpy as np
import pytest

import weightbus
from weightbus._lib import DLManagedTensor

# weightbus dtype -> (DLPack 1.1 type code, bits)
DL_CODES = {"bool": (6, 8), "u8": (1, 8), "i8": (0, 8), "i16": (0, 16), "i32": (0, 32), "i64": (0, 64),
            "f16": (2, 16), "bf16": (4, 16), "f32": (2, 32), "f64": (2, 64), "f8e4m3": (10, 8),
            "f8e5m2": (12, 8), "u16": (1, 16), "u32": (1, 32), "u64": (1, 64)}

_get_pointer = ctypes.pythonapi["PyCapsule_GetPointer"]
_get_pointer.argtypes, _get_pointer.restype = [ctypes.py_object, ctypes.c_char_p], ctypes.c_void_p


def managed_of(capsule) -> DLManagedTensor:
    return ctypes.cast(_get_pointer(capsule, b"dltensor"), ctypes.POINTER(DLManagedTensor)).contents


def publish_all_dtypes(client, replicas=2):
    topic = client.create_topic("model", replicas=replicas)
    topic.alloc({name: ((2, 3), name) for name in DL_CODES})
    topic.publish({})
    return topic


def test_capsules_carry_dlpack_codes_for_every_dtype(client):
    publish_all_dtypes(client)
    with client.open_topic("model").snapshot() as s:
        for name, (code, bits) in DL_CODES.items():
            t = s[name]
            capsule = t.__dlpack__()
            tensor = managed_of(capsule).dl_tensor
            assert (tensor.dtype.code, tensor.dtype.bits, tensor.dtype.lanes) == (code, bits, 1), name
            assert tensor.data == t.data_ptr and tensor.ndim == 2
            assert (tensor.shape[0], tensor.shape[1]) == (2, 3)
            assert (tensor.device.device_type, tensor.device.device_id) == (1, 0)
            assert t.__dlpack_device__() == (1, 0)
            del capsule  # never consumed: its destructor gives the export back


def test_numpy_has_no_bf16_or_fp8_so_array_interface_refuses_them(client):
    publish_all_dtypes(client)
    with client.open_topic("model").snapshot() as s:
        for name in ("bf16", "f8e4m3", "f8e5m2"):
            with pytest.raises(TypeError, match=f"is {name}.*DLPack"):
                np.asarray(s[name])
        assert np.asarray(s["bool"]).dtype == np.bool_
        assert np.asarray(s["f16"]).dtype == np.float16


def test_update_tensors_are_writable(client):
    topic = client.create_topic("model")
    topic.alloc({"w": ((5,), "i32")})
    with topic.update() as u:
        assert np.from_dlpack(u["w"]).ctypes.data == u["w"].data_ptr  # NumPy marks DLPack arrays read-only
        array = np.asarray(u["w"])
        assert array.flags.writeable
        array[:] = [1, 2, 3, 4, 5]
    with client.open_topic("model").snapshot() as s:
        assert list(np.asarray(s["w"])) == [1, 2, 3, 4, 5]
    with pytest.raises(weightbus.StateError, match="no longer open"):
        u["w"].__dlpack__()


def can_begin(topic) -> bool:
    try:
        topic.update(timeout=0.05).abort()
        return True
    except weightbus.WaitTimeoutError:
        return False


def test_arrays_keep_the_version_leased_after_the_with_block(broker, client):
    topic = client.create_topic("model", replicas=1)
    topic.alloc({"w": ((4,), "f32")})
    topic.publish({"w": np.full(4, 3, np.float32)})
    with broker.connect("reader") as other:
        reader = other.open_topic("model")
        with reader.snapshot() as s:
            array = np.asarray(s["w"])
        assert not can_begin(topic)  # R = 1: the array's lease blocks an in-place update
        assert list(array) == [3, 3, 3, 3]
        del array
        gc.collect()
        assert can_begin(topic)


def test_consumed_and_unconsumed_capsules_release_the_lease(broker, client):
    topic = client.create_topic("model", replicas=1)
    topic.alloc({"w": ((4,), "f32")})
    topic.publish({})
    with broker.connect("reader") as other:
        reader = other.open_topic("model")
        with reader.snapshot() as s:
            consumed = np.from_dlpack(s["w"])
            unconsumed = s["w"].__dlpack__()
        gc.collect()
        assert not can_begin(topic)
        del consumed
        gc.collect()
        assert not can_begin(topic)
        del unconsumed
        gc.collect()
        assert can_begin(topic)


def test_closing_the_client_under_live_arrays_is_refused(broker, client):
    topic = client.create_topic("model")
    topic.alloc({"w": ((4,), "f32")})
    topic.publish({})
    other = broker.connect("reader")
    with other.open_topic("model").snapshot() as s:
        array = np.asarray(s["w"])
    with pytest.raises(weightbus.StateError, match="'model': 1"):
        other.close()
    del array
    gc.collect()
    other.close()


def test_dlpack_refuses_copies_and_other_devices(client):
    publish_all_dtypes(client)
    with client.open_topic("model").snapshot() as s:
        with pytest.raises(BufferError, match="without copying"):
            s["f32"].__dlpack__(copy=True)
        with pytest.raises(BufferError, match="not on DLPack device"):
            s["f32"].__dlpack__(dl_device=(2, 0))
        with pytest.raises(TypeError, match="host memory"):
            s["f32"].__cuda_array_interface__
