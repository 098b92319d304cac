"""DLPack and the array interfaces: dtype codes (bf16 and fp8 included), who holds the version's lease, and
clear errors where NumPy has no type."""
import ctypes
import gc

import numpy as np
import pytest

import weightbus
from weightbus._lib import DLDeleter, DLManagedTensor, DLManagedTensorVersioned

# weightbus dtype -> (DLPack 1.1 type code, bits)
DL_CODES = {"bool": (6, 8), "u8": (1, 8), "i8": (0, 8), "i16": (0, 16), "i32": (0, 32), "i64": (0, 64),
            "f16": (2, 16), "bf16": (4, 16), "f32": (2, 32), "f64": (2, 64), "f8e4m3": (10, 8),
            "f8e5m2": (12, 8), "u16": (1, 16), "u32": (1, 32), "u64": (1, 64)}

_get_pointer = ctypes.pythonapi["PyCapsule_GetPointer"]
_get_pointer.argtypes, _get_pointer.restype = [ctypes.py_object, ctypes.c_char_p], ctypes.c_void_p


_is_valid = ctypes.pythonapi["PyCapsule_IsValid"]
_is_valid.argtypes, _is_valid.restype = [ctypes.py_object, ctypes.c_char_p], ctypes.c_int
_set_name = ctypes.pythonapi["PyCapsule_SetName"]
_set_name.argtypes, _set_name.restype = [ctypes.py_object, ctypes.c_char_p], ctypes.c_int


def managed_of(capsule) -> DLManagedTensor:
    return ctypes.cast(_get_pointer(capsule, b"dltensor"), ctypes.POINTER(DLManagedTensor)).contents


def versioned_of(capsule) -> DLManagedTensorVersioned:
    return ctypes.cast(_get_pointer(capsule, b"dltensor_versioned"),
                       ctypes.POINTER(DLManagedTensorVersioned)).contents


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


def test_a_capsule_the_consumer_refuses_releases_its_lease(broker, client):
    """NumPy refuses bf16 after taking the capsule, and drops it while its own error is pending (when no Python
    destructor can run): the consumer's error is its own, and the lease goes at the snapshot's release, or at
    the next export."""
    topic = client.create_topic("model", replicas=1)
    topic.alloc({"w": ((4,), "bf16"), "x": ((2,), "f32")})
    topic.publish({})
    with broker.connect("reader") as other:
        reader = other.open_topic("model")
        with reader.snapshot() as s:
            with pytest.raises((RuntimeError, TypeError, BufferError)):
                np.from_dlpack(s["w"])
        assert can_begin(topic)
        s = reader.snapshot()
        with pytest.raises((RuntimeError, TypeError, BufferError)):
            np.from_dlpack(s["w"])
        kept = np.from_dlpack(s["x"])  # the next export drops the refused capsule
        s.release()
        assert not can_begin(topic)  # `kept` holds the version
        del kept
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


def test_the_versioned_struct_has_the_dlpack_1_layout():
    # DLPack 1.x's published ABI on LP64: a consumer reading another layout would read garbage.
    offsets = {name: getattr(DLManagedTensorVersioned, name).offset
               for name in ("version", "manager_ctx", "deleter", "flags", "dl_tensor")}
    assert offsets == {"version": 0, "manager_ctx": 8, "deleter": 16, "flags": 24, "dl_tensor": 32}
    assert ctypes.sizeof(DLManagedTensorVersioned) == 80


def test_consumers_of_dlpack_1_get_versioned_capsules_flagged_read_only_for_snapshots(client):
    topic = publish_all_dtypes(client)
    with client.open_topic("model").snapshot() as s:
        for name, (code, bits) in DL_CODES.items():
            capsule = s[name].__dlpack__(max_version=(1, 0))
            assert _is_valid(capsule, b"dltensor_versioned"), name
            managed = versioned_of(capsule)
            assert (managed.version.major, managed.version.minor) == (1, 1)
            assert managed.flags == 1  # DLPACK_FLAG_BITMASK_READ_ONLY
            tensor = managed.dl_tensor
            assert (tensor.dtype.code, tensor.dtype.bits, tensor.dtype.lanes) == (code, bits, 1), name
            assert tensor.data == s[name].data_ptr and (tensor.shape[0], tensor.shape[1]) == (2, 3)
            del capsule
        for max_version in (None, (0, 8)):  # consumers older than DLPack 1.0 get the legacy capsule
            assert _is_valid(s["f32"].__dlpack__(max_version=max_version), b"dltensor")
    with topic.update() as u:
        capsule = u["f32"].__dlpack__(max_version=(1, 1))
        assert versioned_of(capsule).flags == 0  # an update's tensors are for writing
        del capsule


def counting_deleter(managed, calls):
    """Replaces managed's deleter with one that counts its calls into `calls` and calls the library's."""
    library = DLDeleter(ctypes.cast(managed.deleter, ctypes.c_void_p).value)  # a copy: the field changes below

    def count(address):
        calls.append(address)
        library(address)

    managed.deleter = DLDeleter(count)
    return managed.deleter  # keep it alive while the struct may call it


def test_a_consumed_versioned_capsule_holds_the_lease_until_its_deleter_runs_once(broker, client):
    topic = client.create_topic("model", replicas=1)
    topic.alloc({"w": ((4,), "f32")})
    topic.publish({})
    with broker.connect("reader") as other:
        reader = other.open_topic("model")
        calls = []
        with reader.snapshot() as s:
            capsule = s["w"].__dlpack__(max_version=(1, 0))
        managed = versioned_of(capsule)
        keep = counting_deleter(managed, calls)
        _set_name(capsule, b"used_dltensor_versioned")  # what a consumer does when it takes the struct
        del capsule
        gc.collect()
        assert calls == [] and not can_begin(topic)  # the consumer's: its deleter has not run
        managed.deleter(ctypes.addressof(managed))
        assert len(calls) == 1 and can_begin(topic)
        del keep


def test_an_unconsumed_versioned_capsule_runs_the_deleter_once_when_collected(broker, client):
    topic = client.create_topic("model", replicas=1)
    topic.alloc({"w": ((4,), "f32")})
    topic.publish({})
    with broker.connect("reader") as other:
        reader = other.open_topic("model")
        calls = []
        with reader.snapshot() as s:
            capsule = s["w"].__dlpack__(max_version=(1, 0))
        keep = counting_deleter(versioned_of(capsule), calls)
        gc.collect()
        assert not can_begin(topic)
        del capsule
        gc.collect()
        assert len(calls) == 1 and can_begin(topic)
        del keep
