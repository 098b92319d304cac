"""A Snapshot is a read-only mapping from the names of the topic's tensors and views to their Tensors, as
dict-style code expects: keys(), values(), items(), len(), `in`, iteration over the names, s[name], dict(s),
get(); a missing name is a KeyError that names the tensor and the topic."""
import collections.abc

import numpy as np
import pytest

import weightbus


@pytest.fixture
def snapshot(client):
    """Version 1 of topic "model": tensors w and b, and view w.row1 of w."""
    topic = client.create_topic("model")
    topic.alloc({"w": ((2, 3), "f32"), "b": ((3,), "i64")})
    topic.view("w.row1", "w", "f32", (3,), offset=3 * 4)
    topic.publish({"w": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.array([7, 8, 9])})
    with client.open_topic("model").snapshot() as s:
        yield s


def test_a_snapshot_is_a_mapping_of_the_topics_names_in_topic_order(snapshot):
    assert isinstance(snapshot, collections.abc.Mapping)
    assert list(snapshot) == list(snapshot.keys()) == snapshot.names() == ["w", "b", "w.row1"]
    assert len(snapshot) == len(snapshot.keys()) == 3


def test_its_values_and_items_are_the_tensors_of_its_version(snapshot):
    assert [t.name for t in snapshot.values()] == ["w", "b", "w.row1"]
    assert all(isinstance(t, weightbus.Tensor) and t.version == 1 for t in snapshot.values())
    items = dict(snapshot.items())
    assert list(np.asarray(items["b"])) == [7, 8, 9]
    assert items["w"].data_ptr == snapshot["w"].data_ptr


def test_dict_of_a_snapshot_holds_every_tensor_and_view_by_name(snapshot):
    tensors = dict(snapshot)
    assert list(tensors) == ["w", "b", "w.row1"]
    assert tensors["w.row1"].is_view and list(np.asarray(tensors["w.row1"])) == [3, 4, 5]
    assert np.asarray(tensors["w"]).shape == (2, 3)


def test_in_and_get_see_names_and_views_and_not_other_names(snapshot):
    assert "w" in snapshot and "w.row1" in snapshot and "nope" not in snapshot and 3 not in snapshot
    assert "w" in snapshot.keys() and ("nope", None) not in snapshot.items()
    assert snapshot.get("b").name == "b"
    assert snapshot.get("nope") is None and snapshot.get("nope", "default") == "default"
    assert snapshot.get(3) is None


def test_a_missing_name_raises_a_key_error_naming_the_tensor_and_the_topic(snapshot):
    with pytest.raises(KeyError, match=r"^WB_E_NOT_FOUND: topic 'model' has no tensor 'nope' \(version 1\)$"):
        snapshot["nope"]


def test_the_key_error_is_still_the_not_found_error_that_tensor_raises(snapshot):
    with pytest.raises(weightbus.NotFoundError) as missing:
        snapshot["nope"]
    assert isinstance(missing.value, weightbus.TensorNotFoundError) and missing.value.code_name == "WB_E_NOT_FOUND"
    with pytest.raises(weightbus.NotFoundError, match="topic 'model' has no tensor 'nope'"):
        snapshot.tensor("nope")


def test_a_key_that_is_not_a_string_is_a_missing_key(snapshot):
    with pytest.raises(KeyError, match="topic 'model' names its tensors with strings, not int 3"):
        snapshot[3]


def test_a_snapshot_cannot_be_written_through_the_mapping(snapshot):
    with pytest.raises(TypeError):
        snapshot["w"] = np.zeros((2, 3), np.float32)
    with pytest.raises(TypeError):
        del snapshot["w"]
    assert not hasattr(snapshot, "update") and not hasattr(snapshot, "pop")


def test_snapshots_compare_and_hash_by_identity(snapshot, client):
    with client.open_topic("model").snapshot() as same_version:
        assert snapshot == snapshot and snapshot != same_version
        assert len({snapshot, same_version, snapshot}) == 2


def test_a_sharded_topic_lists_its_logical_tensors_whose_values_need_shard(broker):
    with broker.connect("rank0") as publisher, broker.connect("reader") as reader:
        rank = publisher.create_rank("sharded", 0, 1)
        rank.alloc_shards([{"name": "w", "dtype": "f32", "logical_shape": (4,), "replicated": True}])
        with rank.update():
            pass
        with reader.open_topic("sharded").snapshot() as s:
            assert list(s) == ["w"] and len(s) == 1 and "w" in s
            with pytest.raises(weightbus.StateError):
                s["w"]
            assert s.shard("w", 0).shape == (4,)
