"""A publisher's update: the next version, written then published as one."""
from __future__ import annotations

import ctypes
import threading
from typing import TYPE_CHECKING, Any, Optional

from . import _dlpack
from ._lib import TensorInfo, lib, new
from ._streams import stream_pointer
from .errors import StateError, c_string
from .tensor import Tensor

if TYPE_CHECKING:
    from .topic import Topic


class Update:
    """Version `version` of a topic being written.

    As a context manager it publishes on a normal exit (with `metadata`, and on `stream` when one is set) and
    aborts when the block raises, so that a half-written version is never published::

        with topic.update() as u:
            np.asarray(u["w"])[:] = new_weights
            u.metadata = b"step 42"

    With R >= 2, a tensor handed out holds an older version's bytes: write all of it. Tensors of the update are
    valid until it is published or aborted.

    Attributes: `version`, the number this update publishes (the topic's latest + 1 when it began, fixed from
    the start: name it in logs or in a message to readers before publishing); `published_version`, None until
    the update is published, then that same number, and None for good after an abort (after a `with` block, it
    tells whether the block published); `metadata` and `stream`, what publish() uses when given none.
    """

    def __init__(self, topic: "Topic", handle: ctypes.c_void_p) -> None:
        self.topic = topic
        self._handle: Optional[ctypes.c_void_p] = handle
        self.metadata: bytes = b""
        self.stream: Any = None  # a CUDA stream the tensors were written on: published with it (see publish)
        self.published_version: Optional[int] = None
        self._lock = threading.RLock()  # the C update is one thread's at a time; close() may come from another
        version = ctypes.c_uint64()
        lib.wb_update_version(handle, ctypes.byref(version))
        self.version: int = version.value

    def __repr__(self) -> str:
        state = "open" if self._handle is not None else "closed"
        return f"<weightbus.Update of {self.topic.name!r} version {self.version}, {state}>"

    def __enter__(self) -> "Update":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if self._handle is None:
            return
        if exc_type is not None:
            self.abort()
        else:
            self.publish()

    def tensor(self, name: str) -> Tensor:
        """Marks tensor `name` as changed by this update and returns it, writable (views: write the parent)."""
        info = new(TensorInfo)
        with self._lock:
            self._check_open()
            lib.wb_update_tensor(self._handle, c_string(name), ctypes.byref(info))
        return Tensor(self, info, writable=True)

    __getitem__ = tensor

    def shard(self, name: str, index: int = 0) -> Tensor:
        """Sharded topic: this rank's shard number `index` (in registration order) of logical tensor `name`,
        marked changed and writable, its shape the shard's extent."""
        info = new(TensorInfo)
        with self._lock:
            self._check_open()
            lib.wb_update_shard(self._handle, c_string(name), index, ctypes.byref(info))
        return Tensor(self, info, writable=True, shard=(self.topic.rank or 0, index))

    def publish(self, metadata: Optional[bytes] = None, stream: Any = None) -> int:
        """Publishes the update as one version and returns its number. `metadata` (bytes, at most 4096) replaces
        self.metadata; on a sharded topic it is rank 0's to give (another rank's is InvalidArgumentError). With a `stream` (or self.stream), readers' GPU work is ordered after the work queued on
        it so far, without a host wait."""
        data = bytes(self.metadata if metadata is None else metadata)
        stream = self.stream if stream is None else stream
        version = ctypes.c_uint64()
        with self._lock:
            self._check_open()
            if stream is None:
                lib.wb_update_publish(self._handle, data, len(data), ctypes.byref(version))
            else:
                lib.wb_update_publish_on_stream(self._handle, stream_pointer(stream), data, len(data),
                                                ctypes.byref(version))
            self._close()
        self.published_version = version.value
        return version.value

    def abort(self) -> None:
        """Drops the update: nothing is published (with R = 1 the tensors handed out become dirty)."""
        with self._lock:
            self._check_open()
            lib.wb_update_abort(self._handle)
            self._close()

    def _abort_if_open(self) -> None:
        with self._lock:
            if self._handle is not None:
                self.abort()

    def _close(self) -> None:
        self._handle = None
        self.topic._update_closed(self)

    # What Tensor needs of its owner ---------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._handle is None:
            raise StateError(f"the update of {self.topic.name!r} to version {self.version} is no longer open")

    def _tensor_born(self) -> None:
        pass  # an update's tensors live until the publish, whatever Python holds

    def _tensor_died(self) -> None:
        pass

    def _export(self, name: str, versioned: bool) -> Any:
        export = lib.wb_update_dlpack_versioned if versioned else lib.wb_update_dlpack
        with self._lock:
            self._check_open()
            return _dlpack.export(export, self._handle, name, versioned)

    def _order_stream(self, stream: Optional[int]) -> None:
        pass  # the publisher's own stream order is the caller's

    def _synchronize(self) -> None:
        pass
