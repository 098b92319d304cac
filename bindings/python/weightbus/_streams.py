"""Streams given as Python values: None, an int (a CUstream / cudaStream_t value) or an object with one."""
from __future__ import annotations

from typing import Any, Optional


def stream_pointer(stream: Any) -> Optional[int]:
    """The CUstream value of a stream: None (the legacy default stream), an int, a torch.cuda.Stream or a
    cupy Stream (anything with .cuda_stream or .ptr)."""
    if stream is None or isinstance(stream, int):
        return stream or None
    for attribute in ("cuda_stream", "ptr"):
        value = getattr(stream, attribute, None)
        if isinstance(value, int):
            return value or None
    raise TypeError(f"not a CUDA stream: {stream!r} (give an int, a torch.cuda.Stream or a cupy Stream)")
