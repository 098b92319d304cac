"""Element types: weightbus's names ("f32", "bf16", "f8e4m3"...), and their NumPy / PyTorch spellings."""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

# name: (WB_DTYPE_* value, bytes, NumPy typestr or None where NumPy has no such type)
_TABLE: Dict[str, Tuple[int, int, Optional[str]]] = {
    "bool": (1, 1, "|b1"), "u8": (2, 1, "|u1"), "i8": (3, 1, "|i1"), "i16": (4, 2, "<i2"), "i32": (5, 4, "<i4"),
    "i64": (6, 8, "<i8"), "f16": (7, 2, "<f2"), "bf16": (8, 2, None), "f32": (9, 4, "<f4"), "f64": (10, 8, "<f8"),
    "f8e4m3": (11, 1, None), "f8e5m2": (12, 1, None), "u16": (13, 2, "<u2"), "u32": (14, 4, "<u4"),
    "u64": (15, 8, "<u8"),
}
# Other spellings: NumPy's and PyTorch's names (torch.float8_e4m3fn is the OCP E4M3 that f8e4m3 stores).
_ALIASES = {
    "bool_": "bool", "uint8": "u8", "int8": "i8", "int16": "i16", "short": "i16", "int32": "i32", "int": "i32",
    "int64": "i64", "long": "i64", "float16": "f16", "half": "f16", "bfloat16": "bf16", "float32": "f32",
    "float": "f32", "float64": "f64", "double": "f64", "float8_e4m3fn": "f8e4m3", "float8_e5m2": "f8e5m2",
    "uint16": "u16", "uint32": "u32", "uint64": "u64",
}
_BY_CODE = {code: name for name, (code, _, _) in _TABLE.items()}


def dtype_name(dtype: Any) -> str:
    """weightbus's name of a dtype given as a name, a NumPy dtype or a torch.dtype."""
    text = dtype.__name__ if isinstance(dtype, type) else str(dtype)  # np.float32 is a class
    text = text[len("torch."):] if text.startswith("torch.") else text
    name = _ALIASES.get(text, text)
    if name not in _TABLE:
        raise ValueError(f"unknown dtype {dtype!r}: use one of {', '.join(_TABLE)} (or a NumPy/PyTorch dtype)")
    return name


def dtype_code(dtype: Any) -> int:
    """The WB_DTYPE_* value of a dtype."""
    return _TABLE[dtype_name(dtype)][0]


def name_of_code(code: int) -> str:
    return _BY_CODE[code]


def itemsize(dtype: Any) -> int:
    return _TABLE[dtype_name(dtype)][1]


def numpy_typestr(dtype: Any) -> Optional[str]:
    """The array-interface typestr, or None for bf16 and the fp8 types, which NumPy lacks."""
    return _TABLE[dtype_name(dtype)][2]


def names() -> Tuple[str, ...]:
    return tuple(_TABLE)


def torch_dtype(dtype: Any) -> Any:
    """The torch.dtype of a dtype (ValueError where the installed torch lacks it, e.g. u16 before torch 2.3)."""
    import torch

    name = dtype_name(dtype)
    for spelling in [name] + [alias for alias, target in _ALIASES.items() if target == name]:
        found = getattr(torch, spelling, None)
        if isinstance(found, torch.dtype):
            return found
    raise ValueError(f"torch {torch.__version__} has no dtype for {name}")
