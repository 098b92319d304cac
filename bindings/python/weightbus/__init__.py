"""weightbus: share model weights between processes on one node, and move through versions of them.

    import weightbus
    with weightbus.connect() as client:
        topic = client.open_topic("model")
        version = topic.wait(after=0, timeout=10.0)
        with topic.snapshot(version) as snapshot:
            weights = torch.from_dlpack(snapshot["lm_head.weight"])   # zero-copy, this version's bytes

The package is pure ctypes over libweightbus (found through $WEIGHTBUS_LIBRARY, next to this package, or the
system loader). PyTorch helpers are in weightbus.torch.
"""
from ._lib import METADATA_MAX, MAX_DIMS, MAX_REPLICAS, NAME_MAX, VERSION_MAX, lib as _library
from .client import Client, connect
from .convert import Convert
from .dtypes import dtype_name
from .errors import (AbiMismatchError, AlreadyExistsError, BrokerGoneError, BusyError, CapacityError,
                     ConnectError, CudaError, DirtyError, ExpiredError, InvalidArgumentError, LayoutError,
                     LibraryNotFoundError, NoCudaError, NotFoundError, OutOfMemoryError, PermissionDeniedError,
                     ProtocolError, StaleError, StateError, SystemCallError, TensorNotFoundError, WaitTimeoutError,
                     WeightbusError)
from .info import ClientInfo, LeaseInfo, RankInfo, TensorLayout, TopicInfo
from .plan import Armed, SlicePlan, SlicePlanInfo, parts_merged, parts_qkv, split, split_vocab
from .snapshot import CopyPlan, Snapshot
from .tensor import Tensor
from .topic import Topic
from .update import Update

__version__ = "0.1.0"


def library_version() -> str:
    """The version of the loaded libweightbus, e.g. "0.1.0"."""
    return _library.wb_version_string().decode()


__all__ = [
    "AbiMismatchError", "AlreadyExistsError", "Armed", "BrokerGoneError", "BusyError", "CapacityError", "Client",
    "ClientInfo", "ConnectError", "Convert", "CopyPlan", "CudaError", "DirtyError", "ExpiredError",
    "InvalidArgumentError", "LayoutError", "LeaseInfo", "LibraryNotFoundError", "MAX_DIMS", "MAX_REPLICAS",
    "METADATA_MAX", "NAME_MAX", "NoCudaError", "NotFoundError", "OutOfMemoryError", "PermissionDeniedError",
    "ProtocolError", "RankInfo", "SlicePlan", "SlicePlanInfo", "Snapshot", "StaleError", "StateError",
    "SystemCallError", "Tensor", "TensorLayout", "TensorNotFoundError", "Topic", "TopicInfo", "Update", "VERSION_MAX",
    "WaitTimeoutError", "WeightbusError", "connect", "dtype_name", "library_version", "parts_merged", "parts_qkv",
    "split", "split_vocab",
]
