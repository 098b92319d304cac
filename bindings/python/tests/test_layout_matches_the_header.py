"""The ctypes structs and constants agree with what the C compiler sees in weightbus.h (tests/bindings/
layout-dump prints it), so that a change of the header cannot silently break the binding."""
import ctypes
import os
import subprocess
from pathlib import Path

import pytest

import weightbus
from weightbus import _lib, errors

ROOT = Path(__file__).resolve().parents[3]
DUMP = os.environ.get("WEIGHTBUS_LAYOUT", str(ROOT / "build" / "tests" / "bindings" / "layout-dump"))

STRUCTS = {"wb_attach_options": _lib.AttachOptions, "wb_topic_options": _lib.TopicOptions,
           "wb_topic_info": _lib.TopicInfo, "wb_tensor_spec": _lib.TensorSpec, "wb_view_spec": _lib.ViewSpec,
           "wb_tensor_info": _lib.TensorInfo, "wb_copy_target": _lib.CopyTarget, "wb_client_info": _lib.ClientInfo,
           "wb_lease_info": _lib.LeaseInfo, "wb_rank_options": _lib.RankOptions, "wb_shard_spec": _lib.ShardSpec,
           "wb_rank_info": _lib.RankInfo, "wb_slice_part": _lib.SlicePart, "wb_slice_dest": _lib.SliceDest,
           "wb_plan_info": _lib.PlanInfo, "wb_broker_info": _lib.BrokerInfo}


@pytest.fixture(scope="module")
def dump():
    if not os.path.exists(DUMP):
        pytest.fail(f"{DUMP} is missing: build the C tree first (or set WEIGHTBUS_LAYOUT)")
    lines = subprocess.run([DUMP], check=True, capture_output=True, text=True).stdout.splitlines()
    return [line.split(" ", 2) for line in lines]


def test_struct_sizes_and_offsets(dump):
    seen = set()
    for kind, name, value in dump:
        if kind == "size":
            assert ctypes.sizeof(STRUCTS[name]) == int(value), name
            seen.add(name)
        elif kind == "offset":
            struct, field = name.split(".")
            assert getattr(STRUCTS[struct], field).offset == int(value), name
    assert seen == set(STRUCTS)


def test_constants(dump):
    constants = {name: value for kind, name, value in dump if kind == "const"}
    assert int(constants["WB_NAME_MAX"]) == weightbus.NAME_MAX
    assert int(constants["WB_MAX_DIMS"]) == weightbus.MAX_DIMS
    assert int(constants["WB_MAX_REPLICAS"]) == weightbus.MAX_REPLICAS
    assert int(constants["WB_METADATA_MAX"]) == weightbus.METADATA_MAX
    assert int(constants["WB_VERSION_MAX"]) == weightbus.VERSION_MAX
    assert (int(constants["WB_VERSION_MAJOR"]), int(constants["WB_VERSION_MINOR"])) == _lib.ABI_VERSION
    scales = {n[len("WB_SCALE_"):].lower(): int(v) for n, v in constants.items() if n.startswith("WB_SCALE_")}
    assert scales == {"none": _lib.SCALE_NONE, **weightbus.convert.SCALE_LAYOUTS}
    codes = {int(v): n for n, v in constants.items() if n.startswith("WB_E_")}
    assert codes == errors._NAMES
    dtypes = {n[len("WB_DTYPE_"):].lower(): int(v) for n, v in constants.items() if n.startswith("WB_DTYPE_")}
    assert dtypes == {name: weightbus.dtypes.dtype_code(name) for name in weightbus.dtypes.names()}
