"""The caller's buffers (torch tensors and NumPy arrays) as the C library takes them: address, bytes, device."""
from __future__ import annotations

from typing import Any, Tuple

from .dtypes import dtype_name, itemsize


def buffer_address(buffer: Any, what: str) -> Tuple[int, int, int]:
    """(address, bytes, CUDA ordinal or -1) of a contiguous torch tensor or writable NumPy array; `what` names
    the buffer in the ValueError (not contiguous, read-only) or TypeError (neither kind) raised."""
    if hasattr(buffer, "data_ptr") and hasattr(buffer, "is_contiguous"):  # torch.Tensor
        if not buffer.is_contiguous():
            raise ValueError(f"{what} must be contiguous; this tensor has strides {list(buffer.stride())} for "
                             f"shape {list(buffer.shape)}")
        device = buffer.device.index if buffer.is_cuda else -1
        return buffer.data_ptr(), buffer.numel() * buffer.element_size(), device
    interface = getattr(buffer, "__array_interface__", None)
    if interface is None:
        raise TypeError(f"{what}: cannot copy into {type(buffer).__name__}: give a torch tensor or a NumPy array")
    if interface.get("strides") is not None and not buffer.flags["C_CONTIGUOUS"]:
        raise ValueError(f"{what} must be contiguous; this array has strides {list(buffer.strides)} (bytes) for "
                         f"shape {list(buffer.shape)}")
    if interface["data"][1]:
        raise ValueError(f"{what} must be writable; this array is read-only")
    return interface["data"][0], buffer.nbytes, -1


def buffer_layout(buffer: Any, what: str) -> Tuple[int, int, int, str, Tuple[int, ...], Tuple[int, ...]]:
    """(address, bytes it spans, CUDA ordinal or -1, dtype, shape, strides in elements) of a torch tensor or a
    writable NumPy array, strided ones too."""
    if hasattr(buffer, "data_ptr") and hasattr(buffer, "stride"):  # torch.Tensor
        shape, strides, dtype = tuple(buffer.shape), tuple(buffer.stride()), dtype_name(buffer.dtype)
        device = buffer.device.index if buffer.is_cuda else -1
        return buffer.data_ptr(), _span(shape, strides, dtype), device, dtype, shape, strides
    interface = getattr(buffer, "__array_interface__", None)
    if interface is None:
        raise TypeError(f"{what}: cannot copy into {type(buffer).__name__}: give a torch tensor or a NumPy array")
    if interface["data"][1]:
        raise ValueError(f"{what} must be writable; this array is read-only")
    dtype = dtype_name(buffer.dtype)
    size = itemsize(dtype)
    if any(s % size for s in buffer.strides):
        raise ValueError(f"{what}: strides {buffer.strides} are not whole elements of {dtype}")
    shape, strides = tuple(buffer.shape), tuple(s // size for s in buffer.strides)
    return interface["data"][0], _span(shape, strides, dtype), -1, dtype, shape, strides


def _span(shape: Tuple[int, ...], strides: Tuple[int, ...], dtype: str) -> int:
    """Bytes from the first element to one past the last (the library checks the layout against it)."""
    if any(extent == 0 for extent in shape):
        return 0
    return (sum((extent - 1) * stride for extent, stride in zip(shape, strides)) + 1) * itemsize(dtype)
