"""Output-stationary tiled GEMM (docs/schedules.md, ``gemm_tiled``).

``cluster_m`` x ``cluster_n`` (default 1 x 1: today's program) groups output tiles into thread
block clusters that load shared operands once by TMA multicast (sm90 cuBLAS ``nvjet_..._2x1_``):
blocks are dispatched cluster by cluster (clusters row-major over the tile grid, members
row-major inside), and within a cluster the ``A`` tile of a tile row is loaded by its first
member only (shared by the ``cluster_n`` blocks of that row), the ``B`` tile of a tile column
by its first member only. The other members receive those bytes without an L2 read, so the
multicast bytes count once in ``l2.read_bytes`` and in the receivers' SRAM fills not at all.

``raster`` (``n``: along tile rows, the default; ``m``: down tile columns; ``auto``: along the
side of the cluster grid with fewer clusters, ``m`` on a square grid, the heuristic of
CUTLASS's sm90 persistent tile scheduler; ``tiling: library`` defaults to it) and ``swizzle``
S (strips of S rows or columns visited together, as Triton's GROUP_SIZE_M) set the order of
the clusters (of single tiles without clusters), which decides the L2 reuse of A and B.

Weight-quantized B (``GemmWorkload.b_dtype`` / ``b_group_size``): a B tile is stored and moved
in its quantized format, ``tk·tn·b`` bytes; the group metadata (scale and zero point, tensor
class ``B_scales``) of a group is loaded once per block, with the first k-step that reaches
the group, and read from SRAM by every step that dequantizes weights of the group.
Assumption (as Marlin / AWQ / GPTQ kernels do): B is dequantized in registers after the
shared-memory read, so SRAM per block holds the quantized tiles; the multiply runs at the
activation ``dtype`` (its instruction class times the unchanged ``2·m·n·k`` FLOPs) and the
dequantization's own ALU work is not timed.
"""
from __future__ import annotations

import numpy as np

from ..engine.program import Access, Kernel, Op, Program, Segment
from ..workloads.masks import block_sizes
from ..errors import ScheduleError
from .base import Schedule, fit_blocks, register_schedule

__all__ = ["GemmTiled", "library_tiles"]

MAX_STAGES = 16     # the deepest pipelines cuBLAS used in the H100 data (nvjet ..._64x16)
PARTIAL_BYTES = 4   # split-K partial tiles are fp32 accumulators (cuBLAS splitKreduce reads
                    # float partials)


def library_tiles(m: int, n: int, k: int, elem_bytes: float, sms: int,
                  sram_per_block: float, *, b_elem_bytes: float | None = None,
                  b_group_size: int | None = None, b_group_bytes: float = 0.0) -> dict:
    """Tiles a GEMM library picks for C[m,n] = A[m,k] B[k,n] (``tiling: library``), rules read
    off cuBLAS's choices in the H100 kernel names (memsim/validation/data, docs/validation.md):

    * start from the largest tile: ``tile_m`` follows m for skinny products (8 for m <= 8,
      16, 32, 64 ...) up to 128; ``tile_n`` is 256 once m >= 256, else 64, or 128 for
      n > 8192 (a wgmma tile is at least 64 wide along n); ``tile_k`` 64;
    * while the grid has fewer tiles than 90% of the SMs, shrink (n 256 -> 128, then m down
      to 64, then n to 64, then m down to 8), but not into a grid larger than the SM count
      (a second, mostly empty wave);
    * ``stages``: as many K steps as fit a block's shared memory, at most 16; a step holds
      ``tm·tk·elem_bytes + tk·tn·b_elem_bytes`` (B defaults to ``elem_bytes``) plus, with
      ``b_group_size`` g, the widest step's group metadata ``groups·tn·b_group_bytes``."""
    def pow2(x: int) -> int:
        v = 1
        while v < x:
            v *= 2
        return v

    def tiles(a: int, b: int) -> int:
        return -(-m // a) * -(-n // b)

    tm = min(128, max(8, pow2(m)))
    tn = 256 if m >= 256 else (128 if n > 8192 else 64)
    while tiles(tm, tn) < 0.9 * sms:
        if tn > 128:
            nxt = (tm, tn // 2)
        elif tm > 64:
            nxt = (tm // 2, tn)
        elif tn > 64:
            nxt = (tm, tn // 2)
        elif tm > 8:
            nxt = (tm // 2, tn)
        else:
            break
        if tiles(*nxt) > sms:
            break
        tm, tn = nxt
    tk = 64
    per_stage = _stage_bytes(tm, tn, tk, k, elem_bytes,
                             elem_bytes if b_elem_bytes is None else b_elem_bytes,
                             b_group_size, b_group_bytes)
    stages = int(max(1, min(MAX_STAGES, sram_per_block // per_stage)))
    return {"tile_m": tm, "tile_n": tn, "tile_k": tk, "stages": stages}


def groups_per_step(k: int, tk: int, group: int, new: bool = False) -> np.ndarray:
    """Quantization groups (``group`` weights along k) touched by each k-step of ``tk``
    (step c covers ``[c·tk, min((c+1)·tk, k))``); ``new``: only the groups no earlier step
    touched, the ones whose scales the step loads (they sum to ``ceil(k / group)``)."""
    start = np.arange(0, k, tk, dtype=np.int64)
    end = -(-np.minimum(start + tk, k) // group)
    return end - (-(-start // group) if new else start // group)


def _stage_bytes(tm, tn, tk, k, a_e, b_e, group, group_bytes) -> float:
    """One pipeline stage: the A tile, the quantized B tile and the widest step's scales."""
    need = tm * tk * a_e + tk * tn * b_e
    if group is not None:
        need += int(groups_per_step(k, tk, group).max()) * tn * group_bytes
    return need


@register_schedule
class GemmTiled(Schedule):
    """C = A·B: one thread block per ``tile_m x tile_n`` output tile (row-major over the
    tiles, so blocks of one tile row run together and share A through L2), looping over K in
    steps of ``tile_k``."""

    kind = "gemm_tiled"
    workload_kind = "gemm"

    @classmethod
    def _options(cls, node):
        out = {k: cls._block_option(node, k) for k in ("tile_m", "tile_n", "tile_k")}
        for k in ("cluster_m", "cluster_n"):
            out[k] = node.opt(k, int, None, minimum=1, maximum=16)
        out["raster"] = node.opt("raster", ("n", "m", "auto"), None)
        out["swizzle"] = node.opt("swizzle", int, None, minimum=1)
        out["tiling"] = node.opt("tiling", ("fit", "library"), None)
        out["split_k"] = node.opt("split_k", int, None, minimum=1)
        return out

    def _need(self, tm, tn, tk):
        w = self.workload
        return self.stages * _stage_bytes(tm, tn, tk, w.k, w.dtype_bytes, w.b_dtype_bytes,
                                          w.b_group_size, w.b_group_bytes)

    def _resolve(self):
        w = self.workload
        if self.options.get("tiling") == "library":
            lib = library_tiles(w.m, w.n, w.k, w.dtype_bytes, self.hw.gpu.sms, self.sram_limit,
                                b_elem_bytes=w.b_dtype_bytes, b_group_size=w.b_group_size,
                                b_group_bytes=w.b_group_bytes)
            for key, value in lib.items():
                if not self.options.get(key):
                    self.options[key] = value
            self.stages = self.options["stages"]
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
            fmt = w.dtype if not w.quantized else f"{w.dtype} x {w.b_dtype or w.dtype}"
            scales = " + B scales" if w.b_group_size is not None else ""
            raise self._too_big(f"tile {self.tm}x{self.tn}x{self.tk} {fmt} "
                                f"stages={self.stages}", need,
                                f"{self.stages} x (A {self.tm}x{self.tk} + B {self.tk}x{self.tn}"
                                f"{scales})")
        self.sram = need
        self.cm = self.options.get("cluster_m") or 1
        self.cn = self.options.get("cluster_n") or 1
        raster = self.options.get("raster") or \
            ("auto" if self.options.get("tiling") == "library" else "n")
        if raster == "auto":
            # traverse the shorter side of the cluster grid first (CUTLASS's heuristic: along
            # N when M has more tiles); a square grid goes down its columns
            tiles_m, tiles_n = -(-w.m // self.tm), -(-w.n // self.tn)
            clusters_m, clusters_n = -(-tiles_m // self.cm), -(-tiles_n // self.cn)
            raster = "n" if clusters_m > clusters_n else "m"
        self.raster = raster
        self.swizzle = self.options.get("swizzle") or 1
        k_steps = -(-w.k // min(self.tk, w.k))
        self.split = self.options.get("split_k") or 1
        if self.split > k_steps:
            raise ScheduleError(f"gemm_tiled split_k={self.split} exceeds the {k_steps} K steps "
                                f"of tile_k={self.tk} over k={w.k}")

    def _resolved(self):
        out = {"tile_m": self.tm, "tile_n": self.tn, "tile_k": self.tk}
        if self.options.get("tiling") == "library":
            out["tiling"] = "library"
        if (self.cm, self.cn) != (1, 1):
            out.update(cluster_m=self.cm, cluster_n=self.cn)
        if (self.raster, self.swizzle) != ("n", 1):
            out.update(raster=self.raster, swizzle=self.swizzle)
        if self.split > 1:
            out["split_k"] = self.split
        return out

    def _cluster_order(self, Qa, Qc):
        """Cluster (row, column) pairs in dispatch order: ``raster`` n moves along a row of
        clusters first (m: down a column); ``swizzle`` S visits S rows (columns) together,
        column by column (row by row) inside the strip."""
        S = self.swizzle
        if self.raster == "n":
            return [(qa, qc) for a0 in range(0, Qa, S) for qc in range(Qc)
                    for qa in range(a0, min(a0 + S, Qa))]
        return [(qa, qc) for c0 in range(0, Qc, S) for qa in range(Qa)
                for qc in range(c0, min(c0 + S, Qc))]

    def _dispatch(self, Tm, Tn):
        """(tile row, tile column, loads A, loads B) of each block in dispatch order."""
        cm, cn = self.cm, self.cn
        order = []
        for qa, qc in self._cluster_order(-(-Tm // cm), -(-Tn // cn)):
            for ra in range(cm):
                for rc in range(cn):
                    a, c = qa * cm + ra, qc * cn + rc
                    if a < Tm and c < Tn:
                        order.append((a, c, rc == 0, ra == 0))
        return order

    def kernels(self):
        w = self.workload
        e = float(w.dtype_bytes)
        be = float(w.b_dtype_bytes)          # == e unless B is quantized
        rm = block_sizes(w.m, self.tm).astype(np.float64)
        rn = block_sizes(w.n, self.tn).astype(np.float64)
        rk = block_sizes(w.k, self.tk).astype(np.float64)
        Tm, Tn, Tk = len(rm), len(rn), len(rk)
        p = Program()
        A, B, C = p.tensor("A", Tm * Tk), p.tensor("B", Tk * Tn), p.tensor("C", Tm * Tn)
        if w.b_group_size is not None:
            # scales and zero points, per column: a block loads each group's once, with the
            # first k-step that reaches the group, and reads those of every group its
            # step dequantizes (a group split by a step boundary is read by both steps)
            S = p.tensor("B_scales", Tk * Tn)
            g_new = groups_per_step(w.k, self.tk, w.b_group_size, new=True).astype(np.float64)
            g_use = groups_per_step(w.k, self.tk, w.b_group_size).astype(np.float64)
            ge = float(w.b_group_bytes)
        else:
            S = None
        ks = np.arange(Tk, dtype=np.int64)
        zero = np.zeros(1, dtype=np.int64)

        order = self._dispatch(Tm, Tn) if (self.cm, self.cn, self.raster, self.swizzle) != \
            (1, 1, "n", 1) else None
        split = self.split
        if split > 1:
            # split-K: the S blocks of a tile (consecutive in the grid) each take a contiguous
            # share of its K steps and write an fp32 partial tile; a second kernel sums them
            # (balanced: every share has floor or ceil of Tk / S steps, none is empty)
            k_parts = [ks[i * Tk // split:(i + 1) * Tk // split] for i in range(split)]
            Cp = p.tensor("C_partial", Tm * Tn * split)

        def block(b):
            b, part = divmod(b, split)
            if order is None:
                a, c = divmod(b, Tn)
                load_a = load_b = True
            else:
                a, c, load_a, load_b = order[b]
            ma, nc = float(rm[a]), float(rn[c])
            loads = ((Access(A.index, A.base + a * Tk, 1, ma * e, rk),) if load_a else ()) + \
                ((Access(B.index, B.base + c, Tn, nc * be, rk),) if load_b else ())
            operands = (Access(A.index, 0, 0, ma * e, rk), Access(B.index, 0, 0, nc * be, rk))
            if S is not None:
                if load_b:
                    loads += (Access(S.index, S.base + c, Tn, nc * ge, g_new),)
                operands += (Access(S.index, 0, 0, nc * ge, g_use),)
            steps = ks if split == 1 else k_parts[part]
            out = (Access(C.index, C.base + a * Tn + c, 0, ma * nc * e) if split == 1 else
                   Access(Cp.index, Cp.base + (a * Tn + c) * split + part, 0,
                          ma * nc * PARTIAL_BYTES))
            return (Segment(steps, loads=loads,
                            ops=(Op(self.instruction, 2.0 * ma * nc, rk),),
                            operands=operands),
                    Segment(zero, stores=(out,)))

        main = Kernel("gemm", Tm * Tn * split, self.sram, self.stages, block, p)
        if split == 1:
            return [main]
        parts = np.arange(split, dtype=np.int64)

        def reduce(b):
            a, c = divmod(b, Tn)
            ma, nc = float(rm[a]), float(rn[c])
            partial = Access(Cp.index, Cp.base + b * split, 1, ma * nc * PARTIAL_BYTES)
            return (Segment(parts, loads=(partial,), operands=(partial,)),
                    Segment(zero, stores=(Access(C.index, C.base + b, 0, ma * nc * e),)))

        # an elementwise kernel: the partials pass through registers, no shared memory (so
        # any tile size fits, and the blocks per SM are the GPU's limit)
        return [main, Kernel("gemm_splitk_reduce", Tm * Tn, 0.0, 2, reduce, p)]
