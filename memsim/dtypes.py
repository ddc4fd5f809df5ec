"""Element types and their sizes: the one table every part of memsim uses.

Sizes are in bytes per element; ``int4`` is packed two to a byte (0.5 B), so byte counts of
int4 tensors are whole only for even element counts. Use :func:`nbytes` to turn an element
count into bytes (it refuses counts that would give a fractional byte).
"""
from __future__ import annotations

from types import MappingProxyType

from .errors import InputError

__all__ = ["DTYPE_BYTES", "DTYPES", "dtype_bytes", "check_dtype", "nbytes"]

DTYPE_BYTES = MappingProxyType({
    "fp32": 4,
    "bf16": 2,
    "fp16": 2,
    "fp8": 1,
    "int8": 1,
    "int4": 0.5,
})
"""Bytes per element of each known dtype (read-only)."""

DTYPES = tuple(DTYPE_BYTES)
"""Names of the known dtypes, in table order."""


def check_dtype(name: object, what: str = "dtype") -> str:
    """Return ``name`` if it is a known dtype, else raise ``InputError`` naming ``what``."""
    if not isinstance(name, str) or name not in DTYPE_BYTES:
        raise InputError(f'"{what}" must be one of {", ".join(DTYPES)}, got {name!r}')
    return name


def dtype_bytes(name: str) -> float:
    """Bytes per element of ``name`` (an int, except 0.5 for int4)."""
    return DTYPE_BYTES[check_dtype(name)]


def nbytes(elements: int, dtype: str) -> int:
    """Bytes taken by ``elements`` elements of ``dtype``, as an int.

    Raises ``InputError`` when the result is not whole (an odd number of int4 elements).
    """
    size = dtype_bytes(dtype)
    total = elements * size
    if total != int(total):
        raise InputError(f"{elements} elements of {dtype} take {total} bytes, "
                         "expected a whole number of bytes")
    return int(total)
