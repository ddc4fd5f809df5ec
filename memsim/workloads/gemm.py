"""The GEMM workload ``C = A · B`` with A ``m × k``, B ``k × n`` and C ``m × n``.

    workload:
      kind: gemm
      m: 4096
      n: 4096
      k: 4096
      dtype: bf16      # optional, default bf16
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..dtypes import DTYPES, check_dtype, dtype_bytes, nbytes
from ..errors import InputError
from ..spec import Node

__all__ = ["GemmWorkload"]


@dataclass(frozen=True)
class GemmWorkload:
    """Dense matrix multiplication; all three matrices use ``dtype``."""

    m: int
    n: int
    k: int
    dtype: str = "bf16"

    kind = "gemm"

    def __post_init__(self) -> None:
        for name in ("m", "n", "k"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise InputError(f'"{name}" must be an integer >= 1, got {value!r}')
            object.__setattr__(self, name, int(value))
        check_dtype(self.dtype)

    @classmethod
    def from_node(cls, node: Node) -> "GemmWorkload":
        """Load from a run configuration's ``workload`` mapping; rejects unknown keys."""
        node.opt("kind", ("gemm",))
        m = node.req("m", int, minimum=1)
        n = node.req("n", int, minimum=1)
        k = node.req("k", int, minimum=1)
        dtype = node.opt("dtype", DTYPES, "bf16")
        node.close()
        return cls(m, n, k, dtype)

    def to_dict(self) -> dict:
        """Plain data for the result's ``workload`` section (same keys as the YAML)."""
        return {"kind": self.kind, "m": self.m, "n": self.n, "k": self.k, "dtype": self.dtype}

    @property
    def dtype_bytes(self) -> float:
        """Bytes per element of A, B and C."""
        return dtype_bytes(self.dtype)

    def tensor_bytes(self) -> dict[str, int]:
        """Bytes of each matrix: a, b, c."""
        return {"a": nbytes(self.m * self.k, self.dtype), "b": nbytes(self.k * self.n, self.dtype),
                "c": nbytes(self.m * self.n, self.dtype)}

    @property
    def flops(self) -> int:
        """``2 · m · n · k`` (one multiply and one add per term)."""
        return 2 * self.m * self.n * self.k
