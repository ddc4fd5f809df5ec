"""Output-stationary tiled GEMM (docs/schedules.md, ``gemm_tiled``)."""
from __future__ import annotations

import numpy as np

from ..engine.program import Access, Kernel, Op, Program, Segment
from ..workloads.masks import block_sizes
from .base import Schedule, fit_blocks, register_schedule

__all__ = ["GemmTiled"]


@register_schedule
class GemmTiled(Schedule):
    """C = A·B: one thread block per ``tile_m x tile_n`` output tile (row-major over the
    tiles, so blocks of one tile row run together and share A through L2), looping over K in
    steps of ``tile_k``."""

    kind = "gemm_tiled"
    workload_kind = "gemm"

    @classmethod
    def _options(cls, node):
        return {k: cls._block_option(node, k) for k in ("tile_m", "tile_n", "tile_k")}

    def _need(self, tm, tn, tk):
        return self.stages * (tm * tk + tk * tn) * self.workload.dtype_bytes

    def _resolve(self):
        w = self.workload
        given = [self.options.get(k) for k in ("tile_m", "tile_n", "tile_k")]
        sizes = [g or dflt for g, dflt in zip(given, (128, 128, 64))]
        if not all(given):
            fit = fit_blocks(sizes, lambda a, b, c: self._need(min(a, w.m), min(b, w.n),
                                                               min(c, w.k)), self.sram_limit)
            if fit is not None:
                sizes = [g or f for g, f in zip(given, fit)]
        self.tm, self.tn, self.tk = sizes
        need = self._need(min(self.tm, w.m), min(self.tn, w.n), min(self.tk, w.k))
        if need > self.sram_limit:
            raise self._too_big(f"tile {self.tm}x{self.tn}x{self.tk} {w.dtype} "
                                f"stages={self.stages}", need,
                                f"{self.stages} x (A {self.tm}x{self.tk} + B {self.tk}x{self.tn})")
        self.sram = need

    def _resolved(self):
        return {"tile_m": self.tm, "tile_n": self.tn, "tile_k": self.tk}

    def kernels(self):
        w = self.workload
        e = float(w.dtype_bytes)
        rm = block_sizes(w.m, self.tm).astype(np.float64)
        rn = block_sizes(w.n, self.tn).astype(np.float64)
        rk = block_sizes(w.k, self.tk).astype(np.float64)
        Tm, Tn, Tk = len(rm), len(rn), len(rk)
        p = Program()
        A, B, C = p.tensor("A", Tm * Tk), p.tensor("B", Tk * Tn), p.tensor("C", Tm * Tn)
        ks = np.arange(Tk, dtype=np.int64)
        zero = np.zeros(1, dtype=np.int64)

        def block(b):
            a, c = divmod(b, Tn)
            ma, nc = float(rm[a]), float(rn[c])
            return (Segment(ks, loads=(Access(A.index, A.base + a * Tk, 1, ma * e, rk),
                                       Access(B.index, B.base + c, Tn, nc * e, rk)),
                            ops=(Op(self.instruction, 2.0 * ma * nc, rk),),
                            operands=(Access(A.index, 0, 0, ma * e, rk),
                                      Access(B.index, 0, 0, nc * e, rk))),
                    Segment(zero, stores=(Access(C.index, C.base + a * Tn + c, 0,
                                                 ma * nc * e),)))

        return [Kernel("gemm", Tm * Tn, self.sram, self.stages, block, p)]
