"""A tensor of a snapshot (read-only) or of an update (writable), handed to NumPy, PyTorch or CuPy without a
copy through DLPack or the array interfaces."""
from __future__ import annotations

import ctypes
from typing import TYPE_CHECKING, Any, Dict, Optional, Tuple, Union

from . import _dlpack
from ._lib import TensorInfo, lib
from .dtypes import itemsize, name_of_code, numpy_typestr

if TYPE_CHECKING:
    from .snapshot import Snapshot
    from .update import Update

_DEVICE_HOST, _DEVICE_CUDA = 1, 2
_DL_CPU, _DL_CUDA = 1, 2


_ordinals: Dict[bytes, int] = {}  # GPU UUID -> ordinal in this process (fixed once CUDA is initialised)


def _ordinal(uuid: bytes) -> int:
    if uuid not in _ordinals:
        ordinal = ctypes.c_int32()
        lib.wb_cuda_device_ordinal((ctypes.c_uint8 * 16).from_buffer_copy(uuid), ctypes.byref(ordinal))
        _ordinals[uuid] = ordinal.value
    return _ordinals[uuid]


class Tensor:
    """One tensor or view as of one version.

    A tensor taken from a snapshot keeps that snapshot's version leased for as long as the Tensor (or an array
    made from it with np.asarray) is alive, even after the snapshot's `with` block: its bytes never change
    under you. Tensors exported with DLPack (torch.from_dlpack) hold their own lease in the C library.
    Its bytes are read-only: NumPy arrays of it refuse writes (ValueError), but PyTorch and CuPy have no
    read-only arrays, and a write through them kills the process (host memory is mapped read-only: SIGSEGV) or
    changes the version under every reader (CUDA). See the README for each consumer.
    A tensor of an update is writable until the update is published or aborted.

    Attributes: name, dtype (weightbus's name, e.g. "bf16"), shape, strides (in elements), nbytes, data_ptr,
    device ("cpu" or "cuda:N", the ordinal in this process), version (the version that last wrote the bytes),
    index (position in the topic), is_view, writable, shard ((rank, index) for a shard of a sharded topic, whose
    shape is the shard's extent; its DLPack capsule is the legacy kind, which cannot say read-only).
    """

    def __init__(self, owner: Union["Snapshot", "Update"], info: TensorInfo, writable: bool,
                 shard: Optional[Tuple[int, int]] = None) -> None:
        self._owner = owner
        self.shard = shard  # (rank, index) of a sharded topic's shard, else None
        self.name: str = info.name.decode()
        self.dtype: str = name_of_code(info.dtype)
        self.shape: Tuple[int, ...] = tuple(info.shape[: info.ndim])
        self.strides: Tuple[int, ...] = tuple(info.strides[: info.ndim])
        self.nbytes: int = info.nbytes
        self.data_ptr: int = info.data or 0
        self.version: int = info.version
        self.index: int = info.index
        self.is_view: bool = bool(info.is_view)
        self.writable = writable
        self.device: str = "cpu"
        self._device_id = 0
        if info.device_type == _DEVICE_CUDA:
            self._device_id = _ordinal(bytes(info.device_uuid))
            self.device = f"cuda:{self._device_id}"
        owner._tensor_born()

    def __del__(self) -> None:
        owner = getattr(self, "_owner", None)
        if owner is not None:
            owner._tensor_died()

    def __repr__(self) -> str:
        return (f"<weightbus.Tensor {self.name!r} {self.dtype}{list(self.shape)} on {self.device}, "
                f"version {self.version}>")

    @property
    def is_cuda(self) -> bool:
        return self.device != "cpu"

    # DLPack ---------------------------------------------------------------------------------------------------

    def __dlpack_device__(self) -> Tuple[int, int]:
        return (_DL_CUDA, self._device_id) if self.is_cuda else (_DL_CPU, 0)

    def __dlpack__(self, *, stream: Optional[int] = None, max_version: Optional[Tuple[int, int]] = None,
                   dl_device: Optional[Tuple[int, int]] = None, copy: Optional[bool] = None) -> Any:
        """A DLPack capsule of the tensor, without a copy (the Python array API standard's protocol).

        max_version: the newest DLPack version the consumer understands. With a major of 1 or more the capsule is
        "dltensor_versioned" (DLPack 1.x), flagged read-only for a tensor of a snapshot; otherwise (None: a
        consumer older than DLPack 1.0) it is the legacy "dltensor", which cannot say so. NumPy 2.1 and later
        honour the flag, PyTorch and CuPy ignore it: the README has a table.
        stream: for a CUDA tensor of a snapshot, the consumer's stream as an int (None or 1: the legacy default
        stream, 2: per-thread default, -1: no ordering) is first made to wait for the GPU work that wrote the
        version.
        dl_device: must be None or the tensor's own device (weightbus does not move tensors).
        copy: True raises BufferError: weightbus never copies (copy from the array you get, or into your own
        buffers with Snapshot.copy_into). False and None share the tensor's bytes."""
        if copy:
            raise BufferError(f"tensor {self.name!r}: weightbus exports tensors without copying, so copy=True is "
                              "refused; make the copy from the array you get (np.array(t), "
                              "torch.from_dlpack(t).clone()) or use Snapshot.copy_into")
        if dl_device is not None and tuple(dl_device) != self.__dlpack_device__():
            raise BufferError(f"tensor {self.name!r} is on {self.device}, not on DLPack device {dl_device}")
        if self.is_cuda and stream != -1:
            self._owner._order_stream(stream)
        if self.shard is not None:
            self._owner._check_open()
            return _dlpack.export_described(self, self.__dlpack_device__())
        versioned = max_version is not None and max_version[0] >= 1
        return self._owner._export(self.name, versioned)

    # Array interfaces -----------------------------------------------------------------------------------------

    def _interface(self, kind: str) -> Dict[str, Any]:
        self._owner._check_open()
        typestr = numpy_typestr(self.dtype)
        if typestr is None:
            raise TypeError(f"tensor {self.name!r} is {self.dtype}, which {kind} has no type for: use DLPack "
                            "(torch.from_dlpack) instead")
        size = itemsize(self.dtype)
        return {"shape": self.shape, "typestr": typestr, "data": (self.data_ptr, not self.writable),
                "strides": tuple(s * size for s in self.strides), "version": 3}

    @property
    def __array_interface__(self) -> Dict[str, Any]:
        """NumPy's view of a host tensor: np.asarray(t) wraps it without a copy (read-only for snapshots)."""
        if self.is_cuda:
            raise TypeError(f"tensor {self.name!r} is on {self.device}: use torch.from_dlpack or "
                            "cupy.from_dlpack, or Snapshot.copy_into to copy it to the host")
        return self._interface("NumPy")

    @property
    def __cuda_array_interface__(self) -> Dict[str, Any]:
        """The CUDA Array Interface (v3) of a CUDA tensor. For a snapshot this first waits on the host until
        the GPU work that wrote the version is done, so the consumer needs no stream. The data is not flagged
        read-only even for a snapshot: CUDA mappings have no read-only mode, and PyTorch refuses the flag.
        Readers must not write it."""
        if not self.is_cuda:
            raise TypeError(f"tensor {self.name!r} is in host memory: use np.asarray")
        interface = self._interface("the CUDA Array Interface")
        self._owner._synchronize()
        interface["data"] = (self.data_ptr, False)
        interface["stream"] = None
        return interface

    def numpy(self) -> Any:
        """np.asarray(self): a host tensor as a NumPy array, without a copy."""
        import numpy

        return numpy.asarray(self)
