"""weightbus.torch.snapshot_tensors: every tensor of a snapshot as torch tensors at once, the same as
torch.from_dlpack of each (every dtype this torch has, 0-d, empty, strided and aliasing views), holding the version
leased until the last of them dies (or, borrowed, the same tensor objects for every version lying in the same
place, holding nothing), with clear errors."""
import gc

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import weightbus  # noqa: E402
from weightbus._flip import _even_runs  # noqa: E402
from weightbus.torch import UnsupportedError, snapshot_tensors  # noqa: E402
from test_dlpack import can_begin  # noqa: E402

# weightbus dtype -> torch's name of it; those this torch lacks are left out of the topics below.
SPELLINGS = {"bool": "bool", "u8": "uint8", "i8": "int8", "i16": "int16", "i32": "int32", "i64": "int64",
             "f16": "float16", "bf16": "bfloat16", "f32": "float32", "f64": "float64", "f8e4m3": "float8_e4m3fn",
             "f8e5m2": "float8_e5m2", "u16": "uint16", "u32": "uint32", "u64": "uint64"}
TORCH_HAS = [name for name, spelling in SPELLINGS.items() if hasattr(torch, spelling)]
TORCH_LACKS = [name for name in SPELLINGS if name not in TORCH_HAS]


def raw(t):
    """A tensor's bytes, in order of its elements."""
    return t.contiguous().reshape(-1).view(torch.uint8)


def fill(topic, update, salt):
    """Writes distinct bytes into every tensor of the update."""
    for i, layout in enumerate(topic.layout()):
        if not layout.is_view and layout.nbytes:
            try:
                out = raw(torch.from_dlpack(update[layout.name]))
            except RuntimeError:  # this torch reads no DLPack bool (1.13)
                out = torch.from_numpy(np.asarray(update[layout.name]).reshape(-1).view(np.uint8))
            out.copy_((torch.arange(out.numel()) * 7 + salt + i) % 251)


def from_dlpack(tensor):
    """torch.from_dlpack(tensor), or where this torch reads no DLPack bool (1.13), a copy through NumPy."""
    try:
        return torch.from_dlpack(tensor)
    except RuntimeError:
        return torch.from_numpy(np.array(tensor))


def assert_same_as_from_dlpack(snapshot, tensors):
    assert list(tensors) == snapshot.names()
    for name, t in tensors.items():
        one = snapshot[name]
        want = from_dlpack(one)
        assert (t.dtype, t.shape, t.stride(), t.device) == (want.dtype, one.shape, one.strides, want.device), name
        if t.numel():
            assert t.data_ptr() == one.data_ptr, name
            assert torch.equal(raw(t), raw(want)), name


def test_every_dtype_shape_and_view_is_what_from_dlpack_gives(broker, client):
    topic = client.create_topic("model", replicas=2)
    shapes = [(), (0, 3), (5,), (2, 3), (2, 3, 4)]
    topic.alloc({f"{dtype}{list(shape)}": (shape, dtype) for dtype in TORCH_HAS for shape in shapes})
    topic.alloc({"fused": ((12, 8), "f32")})
    topic.view("rows", "fused", "f32", (4, 8), offset=4 * 8 * 4)                 # rows 4..7: contiguous
    topic.view("column", "fused", "f32", (12,), strides=(8,), offset=3 * 4)      # column 3: strided
    topic.view("alias", "fused", "f32", (12, 8))                                 # the whole parent again
    topic.view("bytes", "fused", "u8", (4,), offset=4)                           # another dtype, odd place
    for salt in (1, 2):
        with topic.update() as u:
            fill(topic, u, salt)
        with broker.connect("reader") as other, other.open_topic("model").snapshot() as s:
            tensors = snapshot_tensors(s)
            assert_same_as_from_dlpack(s, tensors)
            assert tensors["alias"].data_ptr() == tensors["fused"].data_ptr()
            assert tensors["alias"] is not tensors["fused"]
            del tensors


def test_the_tensors_keep_the_version_leased_until_the_last_one_dies(broker, client):
    topic = client.create_topic("model", replicas=1)
    topic.alloc({"a": ((4,), "f32"), "b": ((2, 2), "i64")})
    topic.publish({"a": np.full(4, 3, np.float32)})
    with broker.connect("reader") as other:
        reader = other.open_topic("model")
        snapshot = reader.snapshot()
        with snapshot:
            tensors = snapshot_tensors(snapshot)
        del snapshot  # released, and the object gone: the tensors hold the lease
        gc.collect()
        assert not can_begin(topic)  # R = 1: an in-place update waits for the lease
        assert tensors["a"].tolist() == [3, 3, 3, 3]
        a = tensors.pop("a")
        del tensors
        gc.collect()
        assert not can_begin(topic)  # one tensor still alive
        del a
        gc.collect()
        assert can_begin(topic)
        assert not reader.info().dirty


def test_many_tensors_over_versions_alternating_replicas(broker, client):
    topic = client.create_topic("model", replicas=2)
    names = [f"layers.{i // 4}.{part}" for i, part in zip(range(1000), ["q", "k", "norm", "bias"] * 250)]
    shapes = {"q": (16, 8), "k": (8, 8), "norm": (8,), "bias": ()}
    topic.alloc({name: (shapes[name.rsplit(".", 1)[1]], "f32") for name in names})
    with broker.connect("reader") as other:
        reader = other.open_topic("model")
        for version in range(1, 5):
            topic.publish({name: np.full(shapes[name.rsplit(".", 1)[1]], version + i, np.float32)
                           for i, name in enumerate(names)})
            with reader.snapshot() as s:
                tensors = snapshot_tensors(s)
                assert list(tensors) == names
                assert all(t.shape == shapes[name.rsplit(".", 1)[1]] for name, t in tensors.items())
                assert all(bool((t == version + i).all()) for i, t in enumerate(tensors.values()))
                assert all(t.data_ptr() == s[name].data_ptr for name, t in tensors.items())
            del tensors


def test_borrowed_tensors_are_made_once_for_each_place_a_version_lies(broker, client):
    topic = client.create_topic("model", replicas=2)
    names = [f"layers.{i}.w" for i in range(50)]
    topic.alloc({name: ((3, 4), "f32") for name in names})
    topic.alloc({"empty": ((0, 2), "f32"), "norm": ((4,), "bf16")})
    topic.view("row", "layers.1.w", "f32", (4,), offset=4 * 4)
    with broker.connect("reader") as other:
        reader = other.open_topic("model")
        seen = {}  # replica's first address -> the dict borrowed from it
        for version in range(1, 6):
            with topic.update() as u:
                fill(topic, u, version)
            with reader.snapshot() as s:
                tensors = snapshot_tensors(s, borrow=True)
                assert_same_as_from_dlpack(s, tensors)  # this version's values, where this version lies
                earlier = seen.setdefault(s["layers.0.w"].data_ptr, tensors)
                assert tensors is not earlier or version <= 2  # a new dict each time...
                assert all(tensors[n] is earlier[n] for n in tensors)  # ...of the objects made for this replica
                assert snapshot_tensors(s, borrow=True)["norm"] is tensors["norm"]  # again: the same
                kept = snapshot_tensors(s)  # not borrowed: new tensors that keep the version leased
                assert all(kept[n] is not tensors[n] for n in tensors)
                del kept
        assert len(seen) == 2  # R = 2: two places, whatever the version
        a, b = seen.values()
        assert a["layers.0.w"].data_ptr() != b["layers.0.w"].data_ptr()


def test_borrowed_tensors_do_not_keep_the_version_leased(broker, client):
    topic = client.create_topic("model", replicas=1)
    topic.alloc({"a": ((4,), "f32")})
    topic.publish({"a": np.full(4, 3, np.float32)})
    with broker.connect("reader") as other:
        reader = other.open_topic("model")
        with reader.snapshot() as s:
            tensors = snapshot_tensors(s, borrow=True)
            assert not can_begin(topic)  # R = 1: the snapshot's own lease
        gc.collect()
        assert can_begin(topic)  # the tensors alive, the version no longer leased
        topic.publish({"a": np.full(4, 5, np.float32)})  # R = 1: in place, under the borrowed tensors
        with reader.snapshot() as s:
            again = snapshot_tensors(s, borrow=True)
            assert again["a"] is tensors["a"] and again["a"].tolist() == [5, 5, 5, 5]


def test_borrowed_tensors_follow_a_view_added_later(broker, client):
    topic = client.create_topic("model", replicas=1)
    topic.alloc({"a": ((4,), "f32")})
    topic.publish({"a": np.arange(4, dtype=np.float32)})
    reader = client.open_topic("model")
    with reader.snapshot() as s:
        first = snapshot_tensors(s, borrow=True)
    topic.view("tail", "a", "f32", (2,), offset=8)  # views may be added to a sealed topic
    with reader.snapshot() as s:
        second = snapshot_tensors(s, borrow=True)
        assert list(second) == ["a", "tail"] and second["tail"].tolist() == [2, 3]
    assert list(first) == ["a"]  # the dict handed out before is the caller's own


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here (tests/gpu/run.sh runs this on one)")
def test_borrowed_cuda_tensors_of_registered_memory_stay_until_a_cuda_allocation_changes(broker, client):
    from weightbus import _table

    weights = {"a": torch.zeros(4, device="cuda"), "b": torch.zeros(2, 3, device="cuda")}
    topic = client.create_topic("model", replicas=1)
    topic.register_cuda(weights)
    places, first = [], None
    with broker.connect("reader") as other:
        reader = other.open_topic("model")
        for version in (1, 2, 3):
            with topic.update() as u:
                u.tensor("a")
                weights["a"].fill_(version)
                torch.cuda.synchronize()
            if version == 3:  # a CUDA allocation registered: the place moves on, the tensors are looked at again
                big = torch.zeros(16 << 20, device="cuda")  # 64 MiB: a block of its own, not the small pool's
                client.create_topic("other", replicas=1).register_cuda({"c": big})
            with reader.snapshot() as s:
                with s._lock:
                    places.append(_table.place(s)[0])
                tensors = snapshot_tensors(s, borrow=True)
                first = first or tensors
                assert tensors["a"] is first["a"] and tensors["b"] is first["b"]  # the same memory each time
                assert tensors["a"].tolist() == [version] * 4
                torch.cuda.current_stream().synchronize()
    assert places[0] == places[1] != places[2] and 0 not in places, places


def test_a_released_snapshot_is_refused_when_borrowing_too(published):
    _, reader = published
    with reader.snapshot() as s:
        pass
    with pytest.raises(weightbus.StateError, match="released"):
        snapshot_tensors(s, borrow=True)


def test_a_region_capsule_nobody_consumed_lets_the_lease_go(published):
    from weightbus import _dlpack
    from weightbus.snapshot import _Hold

    _, reader = published
    with reader.snapshot() as s:
        address = s["w"].data_ptr
        capsule = _dlpack.export_region(address, 16, (1, 0), _Hold(s))
    gc.collect()
    assert s._handle is not None  # the unconsumed capsule's hold keeps the version leased
    del capsule
    gc.collect()
    assert s._handle is None


def test_an_empty_topic_gives_an_empty_dict(client):
    topic = client.create_topic("model")
    topic.alloc({"only": ((0,), "f32")})
    topic.publish({})
    with client.open_topic("model").snapshot() as s:
        tensors = snapshot_tensors(s)
        assert tensors["only"].shape == (0,) and tensors["only"].dtype == torch.float32


def test_a_released_snapshot_is_refused(published):
    _, reader = published
    with reader.snapshot() as s:
        pass
    with pytest.raises(weightbus.StateError, match="released"):
        snapshot_tensors(s)


def test_a_sharded_topic_is_refused_by_the_library(broker):
    with broker.connect("rank0") as c0, broker.connect("server") as server:
        rank = c0.create_rank("m", 0, 1)
        rank.alloc_shards([{"name": "w", "dtype": "f32", "logical_shape": (4,), "replicated": True}])
        rank.seal_rank(timeout=5)
        with rank.update():
            pass  # nothing written: zero-filled
        with server.open_topic("m").snapshot() as s:
            with pytest.raises(weightbus.StateError, match="sharded|wb_snapshot_shard|plan"):
                snapshot_tensors(s)


@pytest.mark.skipif(not TORCH_LACKS, reason=f"torch {torch.__version__} has every dtype weightbus has")
def test_a_dtype_this_torch_lacks_is_refused_naming_it(client):
    topic = client.create_topic("model")
    topic.alloc({"fine": ((2,), "f32"), "odd": ((2,), TORCH_LACKS[0])})
    topic.publish({})
    with client.open_topic("model").snapshot() as s:
        with pytest.raises(UnsupportedError, match=f"{TORCH_LACKS[0]}.*'odd'"):
            snapshot_tensors(s)
        assert isinstance(UnsupportedError("x"), weightbus.WeightbusError)


@pytest.mark.parametrize("members, runs", [
    ([], []),
    ([(0, 0)], [([0], [0], 1)]),
    ([(0, 0), (10, 1), (20, 2), (30, 3)], [([0, 10, 20, 30], [0, 1, 2, 3], 10)]),
    # gaps on the grid are kept while the run has at most twice as many slots as members
    ([(0, 0), (10, 1), (30, 2), (40, 3)], [([0, 10, 30, 40], [0, 1, 2, 3], 10)]),
    ([(0, 0), (10, 1), (100, 2), (110, 3)], [([0, 10], [0, 1], 10), ([100, 110], [2, 3], 10)]),
    # off the grid: a new run
    ([(0, 0), (10, 1), (25, 2)], [([0, 10], [0, 1], 10), ([25], [2], 1)]),
    # the same offset twice (a view aliasing a tensor): the second goes round again
    ([(0, 0), (0, 1), (10, 2)], [([0, 10], [0, 2], 10), ([0], [1], 1)]),
])
def test_even_runs(members, runs):
    assert list(_even_runs(members)) == runs
