"""The exceptions of weightbus: one class per kind of failure, each carrying the C library's code and message.

Every class derives from WeightbusError and, where one fits, from the built-in exception Python code already
catches: a timeout is a TimeoutError, a missing topic a LookupError, a bad argument a ValueError.
"""
from __future__ import annotations

from typing import Dict, Type


class WeightbusError(Exception):
    """A call into libweightbus failed. `code` is the WB_E_* value, `code_name` its name."""

    code: int = 0
    code_name: str = ""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code
            self.code_name = _NAMES.get(code, f"WB_E_{-code}")


class LibraryNotFoundError(ImportError):
    """libweightbus could not be loaded (or is another version): the message says what was tried."""


class UnsupportedError(WeightbusError, NotImplementedError):
    """The installed torch lacks what a helper of weightbus.torch needs (DTensor before torch 2.4, a dtype)."""


class InvalidArgumentError(WeightbusError, ValueError):
    """WB_E_INVAL, WB_E_NAME_TOO_LONG, WB_E_DTYPE, WB_E_SHAPE, WB_E_SIZE: the call's arguments are wrong."""


class NotFoundError(WeightbusError, LookupError):
    """WB_E_NOT_FOUND: no topic or tensor of that name, or the version is not published."""


class TensorNotFoundError(NotFoundError, KeyError):
    """WB_E_NOT_FOUND from a mapping's lookup, Snapshot[name]: the topic has no tensor or view of that name. A
    KeyError, as dict-style code expects of a missing key, and still the NotFoundError that Snapshot.tensor()
    raises."""

    __str__ = Exception.__str__  # the message as it is: KeyError's would show the repr of it, quoted


class AlreadyExistsError(WeightbusError):
    """WB_E_EXISTS: a tensor of that name exists with another definition."""


class CapacityError(WeightbusError):
    """WB_E_NOSPC: a capacity of the broker (topics, tensors, clients, leases...) is exhausted."""


class OutOfMemoryError(WeightbusError, MemoryError):
    """WB_E_NOMEM: this process (or the GPU) ran out of memory."""


class PermissionDeniedError(WeightbusError, PermissionError):
    """WB_E_ROLE (a reader's handle used to publish) or WB_E_PERM (refused by a credential check: the broker's
    of this uid, or the library's of the broker, its socket directory or the shared memory it sends)."""


class BusyError(WeightbusError):
    """WB_E_BUSY: the topic already has a live publisher."""


class WaitTimeoutError(WeightbusError, TimeoutError):
    """WB_E_TIMEOUT: the wait ran out; nothing was changed."""


class BrokerGoneError(WeightbusError, ConnectionError):
    """WB_E_BROKER_GONE: the broker died or closed the connection."""


class ConnectError(WeightbusError, ConnectionRefusedError):
    """WB_E_CONNECT: no broker listens at the socket path (start one: weightbusd)."""


class AbiMismatchError(WeightbusError):
    """WB_E_ABI_MISMATCH: the broker speaks another layout or protocol version."""


class DirtyError(WeightbusError):
    """WB_E_DIRTY: an R = 1 topic was left half-written by a publisher that died; wait for a new version."""


class ExpiredError(WeightbusError, LookupError):
    """WB_E_EXPIRED: the version is older than what the topic still keeps."""


class StateError(WeightbusError):
    """WB_E_STATE: the call does not fit the object's state (layout sealed, snapshots still held...)."""


class ProtocolError(WeightbusError):
    """WB_E_PROTOCOL: a malformed message from the broker."""


class SystemCallError(WeightbusError, OSError):
    """WB_E_IO: a system call failed; the message has errno's text."""


class NoCudaError(WeightbusError):
    """WB_E_NO_CUDA: CUDA is needed and absent (no libcuda, no GPU, or the library was built without it)."""


class StaleError(WeightbusError):
    """WB_E_STALE: the tensor's CUDA memory was revoked by its exporter, or its exporter died."""


class CudaError(WeightbusError):
    """WB_E_CUDA: a CUDA driver call failed; the message names the call and its CUresult."""


class LayoutError(WeightbusError):
    """WB_E_LAYOUT: a sharded topic's shards overlap, leave a region uncovered, or disagree on dtype or logical
    shape; the message names the tensor, the ranks and the region."""


_NAMES: Dict[int, str] = {
    -1: "WB_E_INVAL", -2: "WB_E_NOMEM", -3: "WB_E_NOT_FOUND", -4: "WB_E_EXISTS", -5: "WB_E_NAME_TOO_LONG",
    -6: "WB_E_DTYPE", -7: "WB_E_SHAPE", -8: "WB_E_SIZE", -9: "WB_E_NOSPC", -10: "WB_E_ROLE", -11: "WB_E_BUSY",
    -12: "WB_E_TIMEOUT", -13: "WB_E_BROKER_GONE", -14: "WB_E_ABI_MISMATCH", -15: "WB_E_DIRTY",
    -16: "WB_E_EXPIRED", -17: "WB_E_STATE", -18: "WB_E_PERM", -19: "WB_E_PROTOCOL", -20: "WB_E_IO",
    -21: "WB_E_NO_CUDA", -22: "WB_E_STALE", -23: "WB_E_CONNECT", -24: "WB_E_CUDA",
    -25: "WB_E_LAYOUT",
}

_CLASSES: Dict[int, Type[WeightbusError]] = {
    -1: InvalidArgumentError, -2: OutOfMemoryError, -3: NotFoundError, -4: AlreadyExistsError,
    -5: InvalidArgumentError, -6: InvalidArgumentError, -7: InvalidArgumentError, -8: InvalidArgumentError,
    -9: CapacityError, -10: PermissionDeniedError, -11: BusyError, -12: WaitTimeoutError, -13: BrokerGoneError,
    -14: AbiMismatchError, -15: DirtyError, -16: ExpiredError, -17: StateError, -18: PermissionDeniedError,
    -19: ProtocolError, -20: SystemCallError, -21: NoCudaError, -22: StaleError, -23: ConnectError,
    -24: CudaError, -25: LayoutError,
}


def error_for(code: int, message: str) -> WeightbusError:
    """The exception for a WB_E_* code, its text being "WB_E_NAME: the library's message"."""
    name = _NAMES.get(code, f"WB_E_{-code}")
    return _CLASSES.get(code, WeightbusError)(f"{name}: {message}", code)


def c_string(text: str, what: str = "name") -> bytes:
    """`text` as the NUL-terminated UTF-8 the C library takes. A NUL inside would end the string there (ctypes
    passes the bytes as they are), so that "a\\0b" would name "a": it is refused instead, as WB_E_INVAL."""
    if "\0" in text:
        raise error_for(-1, f"{what} {text!r} holds a NUL character, which names and paths cannot carry")
    return text.encode()
