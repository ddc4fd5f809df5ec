"""``tiling: library`` against cuBLAS on an LLM's projection GEMMs (``gemm_library.json``).

The measurement (``validation/harness/gemm_library.py``) timed ``x @ W.t()`` in bf16 for
Llama-3-8B's q (and o), k (and v), gate (and up) and down projections at 64 to 16384 tokens,
with the kernels cuBLAS launched. memsim predicts each from its shape alone with
``gemm_tiled``'s ``tiling: library`` rule on the device's preset, as the LLM path does; the
rule was read off the committed GPU cases, none of these shapes.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from ..errors import InputError
from .data import DATA_DIR
from .mapping import _NVJET, device_profile

__all__ = ["GemmLibraryCase", "compare_gemm_library"]


@dataclass(frozen=True)
class GemmLibraryCase:
    """One measured projection GEMM and memsim's library-tiled prediction."""

    id: str
    m: int
    n: int
    k: int
    measured_s: float
    predicted_s: float
    cublas_tile: tuple[int, int] | None     # (tile_m, tile_n) in memsim's orientation
    memsim_tile: tuple[int, int]
    cublas_split_k: bool

    @property
    def err(self) -> float:
        return self.predicted_s / self.measured_s - 1.0

    @property
    def same_tile(self) -> bool:
        return self.cublas_tile == self.memsim_tile


def compare_gemm_library(device: str = "h100", hardware=None) -> list[GemmLibraryCase]:
    """Every committed projection GEMM of ``device`` with memsim's prediction on ``hardware``
    (default: the device's preset), ``tiling: library``, block granularity."""
    from ..simulate import simulate
    path = DATA_DIR / device / "gemm_library.json"
    if not path.is_file():
        raise InputError(f"no GEMM library measurements for {device!r} ({path})")
    doc = json.loads(path.read_text())
    hw = hardware if hardware is not None else device_profile(device).preset
    if hasattr(hw, "to_dict"):          # a Hardware object: pass it as plain data
        hw = hw.to_dict()
    out = []
    for c in doc["cases"]:
        r = simulate({"hardware": hw,
                      "workload": {"kind": "gemm", "m": c["m"], "n": c["n"], "k": c["k"],
                                   "dtype": "bf16"},
                      "schedule": {"kind": "gemm_tiled", "tiling": "library"},
                      "simulation": {"granularity": "block"}})
        main = c["kernels"][0]["name"] if c["kernels"] else ""
        mt = _NVJET.search(main)
        # cuBLAS is column-major: its M tile runs along torch's n
        tile = (int(mt.group(2)), int(mt.group(1))) if mt else None
        out.append(GemmLibraryCase(c["id"], c["m"], c["n"], c["k"], c["time_s"], r.time_s,
                                   tile, (r.schedule["tile_m"], r.schedule["tile_n"]),
                                   "splitK" in main))
    return out
