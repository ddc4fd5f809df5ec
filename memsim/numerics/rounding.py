"""Emulated low-precision rounding (bf16, fp16) without any extra dependency.

Two paths, tested against each other:

* :func:`round_array` (numpy, used for inputs and outputs): bf16 rounds the **float32 bit
  pattern** to its upper 16 bits with round-to-nearest-even (what a GPU's fp32 -> bf16
  conversion does); fp16 uses numpy's ``float16`` cast, which is also round-to-nearest-even
  with subnormals and overflow to inf. float64 data is first cast to float32, like a real
  fp32 -> bf16 conversion path (so it is rounded twice; the first rounding is 2**-24 relative).
* :func:`round_scalar` (numba, used inside kernels for intermediates such as S, P, A): rounds a
  float to ``p`` significand bits with ``frexp``/``rint``/``ldexp`` (exact scaling by powers of
  two), handling subnormals and overflow; selected by an integer code (see ``ROUND_CODES``).
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit

from memsim.errors import InputError

__all__ = ["ROUND_CODES", "round_code", "round_array", "round_scalar"]

#: Integer codes for the kernels: 0 keeps the working precision.
ROUND_CODES = {None: 0, "bf16": 1, "fp16": 2, "fp32": 3}

# (significand bits incl. the implicit one, exponent of the smallest normal, largest finite)
_FORMATS = {
    1: (8, -126, float.fromhex("0x1.fep127")),
    2: (11, -14, 65504.0),
    3: (24, -126, float.fromhex("0x1.fffffep127")),
}


def round_code(name: str | None, field: str = "dtype_round") -> int:
    """Kernel code of a rounding target name (None, 'bf16', 'fp16', 'fp32')."""
    if name not in ROUND_CODES:
        raise InputError(f'"{field}" must be one of none, bf16, fp16, fp32, got {name!r}')
    return ROUND_CODES[name]


def round_array(x: np.ndarray, name: str | None) -> np.ndarray:
    """Round every element of ``x`` to ``name`` ('bf16', 'fp16', 'fp32' or None = unchanged);
    the result keeps ``x``'s dtype (float32 or float64) and holds representable values."""
    code = round_code(name)
    x = np.asarray(x)
    if code == 0:
        return x.copy()
    f32 = x.astype(np.float32)
    if code == 1:
        bits = f32.view(np.uint32).astype(np.uint64)
        # Round to nearest, ties to even on bit 16; carries into the exponent give inf correctly.
        bits = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
        out = bits.astype(np.uint32).view(np.float32)
        out = np.where(np.isnan(f32), f32, out)
    elif code == 2:
        with np.errstate(over="ignore"):
            out = f32.astype(np.float16).astype(np.float32)
    else:
        out = f32
    return out.astype(x.dtype)


_P = np.array([0, 8, 11, 24], dtype=np.int64)
_EMIN = np.array([0, -126, -14, -126], dtype=np.int64)
_MAXF = np.array([0.0, _FORMATS[1][2], _FORMATS[2][2], _FORMATS[3][2]])


@njit(cache=True)
def round_scalar(x, code):
    """Round ``x`` to the format of ``code`` (0 none, 1 bf16, 2 fp16, 3 fp32), nearest-even.
    Returns a value of ``x``'s type."""
    if code == 0 or x == 0 or not math.isfinite(x):
        return x
    p = _P[code]
    a = abs(float(x))
    _, e = math.frexp(a)  # a = m * 2**e with m in [0.5, 1)
    qe = max(e - p, _EMIN[code] - p + 1)  # exponent of one unit in the last place
    r = math.ldexp(round(math.ldexp(a, -qe)), qe)  # round() is half-to-even
    if r > _MAXF[code]:
        r = math.inf
    return type(x)(r if x > 0 else -r)
