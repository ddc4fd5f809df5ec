"""The GEMM workload ``C = A · B`` with A ``m × k``, B ``k × n`` and C ``m × n``.

    workload:
      kind: gemm
      m: 4096
      n: 4096
      k: 4096
      dtype: bf16          # optional, default bf16: A and C (and B unless b_dtype)
      b_dtype: int4        # optional: the weight operand B's stored format (default: dtype)
      b_group_size: 128    # optional: one scale per b_group_size weights along k, per column
      b_scale_dtype: fp16  # optional, default fp16 (only with b_group_size)
      b_zero_point: true   # optional, default false: a zero point per group, in b_dtype

Weight-only quantization (AWQ/GPTQ/Marlin style): B is stored as ``b_dtype`` with, per output
column, one scale (``b_scale_dtype``) and optionally one zero point (``b_dtype`` bits) for
every ``b_group_size`` weights along k (the last group of a column may be short: there are
``ceil(k / b_group_size)`` groups). The multiply runs at ``dtype`` (B is dequantized in
registers), so FLOPs are unchanged.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..dtypes import DTYPES, check_dtype, dtype_bytes, nbytes
from ..errors import InputError
from ..spec import Node

__all__ = ["GemmWorkload"]

DEFAULT_SCALE_DTYPE = "fp16"


def _whole(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


@dataclass(frozen=True)
class GemmWorkload:
    """Dense matrix multiplication; A and C use ``dtype``, B ``b_dtype`` (default ``dtype``)
    with optional group scales (``b_group_size``, ``b_scale_dtype``, ``b_zero_point``)."""

    m: int
    n: int
    k: int
    dtype: str = "bf16"
    b_dtype: str | None = None
    b_group_size: int | None = None
    b_scale_dtype: str | None = None
    b_zero_point: bool = False

    kind = "gemm"

    def __post_init__(self) -> None:
        for name in ("m", "n", "k"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise InputError(f'"{name}" must be an integer >= 1, got {value!r}')
            object.__setattr__(self, name, int(value))
        check_dtype(self.dtype)
        if self.b_dtype is not None:
            check_dtype(self.b_dtype, "b_dtype")
        g = self.b_group_size
        if g is not None:
            if isinstance(g, bool) or not isinstance(g, (int, np.integer)) or g < 1:
                raise InputError(f'"b_group_size" must be an integer >= 1, got {g!r}')
            object.__setattr__(self, "b_group_size", int(g))
            if self.b_scale_dtype is None:
                object.__setattr__(self, "b_scale_dtype", DEFAULT_SCALE_DTYPE)
        elif self.b_scale_dtype is not None or self.b_zero_point:
            what = "b_scale_dtype" if self.b_scale_dtype is not None else "b_zero_point"
            raise InputError(f'"{what}" needs "b_group_size" (the weights per scale along k), '
                             "got no b_group_size")
        if self.b_scale_dtype is not None:
            check_dtype(self.b_scale_dtype, "b_scale_dtype")
        if not isinstance(self.b_zero_point, (bool, np.bool_)):
            raise InputError(f'"b_zero_point" must be true or false, got {self.b_zero_point!r}')
        object.__setattr__(self, "b_zero_point", bool(self.b_zero_point))

    @classmethod
    def from_node(cls, node: Node) -> "GemmWorkload":
        """Load from a run configuration's ``workload`` mapping; rejects unknown keys."""
        node.opt("kind", ("gemm",))
        m = node.req("m", int, minimum=1)
        n = node.req("n", int, minimum=1)
        k = node.req("k", int, minimum=1)
        dtype = node.opt("dtype", DTYPES, "bf16")
        b_dtype = node.opt("b_dtype", DTYPES, None)
        group = node.opt("b_group_size", int, None, minimum=1)
        scale = node.opt("b_scale_dtype", DTYPES, None)
        zero = node.opt("b_zero_point", bool, False)
        node.close()
        try:
            return cls(m, n, k, dtype, b_dtype, group, scale, zero)
        except InputError as exc:
            raise node.error(None, str(exc)) from None

    def to_dict(self) -> dict:
        """Plain data for the result's ``workload`` section (same keys as the YAML; the weight
        format keys only when B differs from ``dtype`` or has group scales)."""
        out = {"kind": self.kind, "m": self.m, "n": self.n, "k": self.k, "dtype": self.dtype}
        if self.b_dtype is not None:
            out["b_dtype"] = self.b_dtype
        if self.b_group_size is not None:
            out.update(b_group_size=self.b_group_size, b_scale_dtype=self.b_scale_dtype,
                       b_zero_point=self.b_zero_point)
        return out

    @property
    def dtype_bytes(self) -> float:
        """Bytes per element of A and C (and of B unless ``b_dtype`` is given)."""
        return dtype_bytes(self.dtype)

    @property
    def b_dtype_bytes(self) -> float:
        """Bytes per stored element of B (``b_dtype``, default ``dtype``)."""
        return dtype_bytes(self.b_dtype or self.dtype)

    @property
    def b_group_bytes(self) -> float:
        """Metadata bytes per group per column: scale plus zero point (0 without groups)."""
        if self.b_group_size is None:
            return 0.0
        return dtype_bytes(self.b_scale_dtype) + (self.b_dtype_bytes if self.b_zero_point
                                                  else 0.0)

    @property
    def quantized(self) -> bool:
        """True when B's format differs from ``dtype`` or carries group scales."""
        return self.b_dtype not in (None, self.dtype) or self.b_group_size is not None

    def tensor_bytes(self) -> dict[str, int | float]:
        """Bytes of each matrix: a, b, c (and b_scales, the group metadata, when grouped)."""
        if not self.quantized:
            return {"a": nbytes(self.m * self.k, self.dtype),
                    "b": nbytes(self.k * self.n, self.dtype),
                    "c": nbytes(self.m * self.n, self.dtype)}
        out = {"a": nbytes(self.m * self.k, self.dtype),
               "b": _whole(self.k * self.n * self.b_dtype_bytes),
               "c": nbytes(self.m * self.n, self.dtype)}
        if self.b_group_size is not None:
            groups = -(-self.k // self.b_group_size)
            out["b_scales"] = _whole(groups * self.n * self.b_group_bytes)
        return out

    @property
    def flops(self) -> int:
        """``2 · m · n · k`` (one multiply and one add per term)."""
        return 2 * self.m * self.n * self.k
