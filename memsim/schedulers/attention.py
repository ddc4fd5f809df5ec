"""Attention forward schedules as tile programs, exactly as docs/schedules.md describes them.

Every schedule works per (batch, query head) ``bh``; query head ``h`` reads K/V head
``h // (heads / kv_heads)``, so K/V region ids are shared within a GQA group (reuse shows up
in L2, not at the SRAM boundary). Masks come from :func:`memsim.workloads.masks.active_tiles`.
"""
from __future__ import annotations


import numpy as np

from ..dtypes import dtype_bytes
from ..engine.program import Access, Kernel, Op, Program, Segment
from ..workloads.masks import active_tiles, block_sizes
from .base import Schedule, fit_blocks, one_of, register_schedule

__all__ = ["Standard", "Flash1", "Flash2", "SquareTiling", "Chunked", "FlashDecoding"]

STATS = 4.0      # softmax statistics and partial results are fp32


class _Attention(Schedule):
    """Shared shapes: sizes of row/key blocks, active tiles, head -> K/V head mapping."""

    workload_kind = "attention"

    def _shape(self, br: int, bc: int) -> None:
        w = self.workload
        self.nq, self.nk, self.d = w.seq_q, w.seq_k, w.head_dim
        self.e = float(w.dtype_bytes)
        self.br, self.bc = br, bc
        self.r = block_sizes(self.nq, br).astype(np.float64)   # Br_i
        self.c = block_sizes(self.nk, bc).astype(np.float64)   # Bc_j
        self.tr, self.tc = len(self.r), len(self.c)
        self.act = active_tiles(self.nq, self.nk, br, bc, w.causal, w.window, w.sparse)
        self.bh = w.batch * w.heads
        self._ones: dict = {}
        # the key blocks each row block visits, in the kernel's order (kv_order)
        step = -1 if self.options.get("kv_order") == "reverse" else 1
        self._rows = [np.flatnonzero(row)[::step].astype(np.int64) for row in self.act]

    def _qkv(self, p: Program, q_blocks: int) -> tuple:
        """Tensor classes Q (``q_blocks`` regions per query head), K and V (one region per key
        block of each K/V head), allocated in that order."""
        nkv = self.workload.batch * self.workload.kv_heads
        return (p.tensor("Q", self.bh * q_blocks), p.tensor("K", nkv * self.tc),
                p.tensor("V", nkv * self.tc))

    def kv_of(self, bh: int) -> int:
        """K/V head (over all batches) read by query head ``bh``."""
        w = self.workload
        b, h = divmod(bh, w.heads)
        return b * w.kv_heads + h // w.group_size

    def _compute(self, coef_rows: float, sizes) -> tuple:
        """Q Kᵀ, exp, P V of one tile: ``2·Br·Bc·d`` FLOPs each, ``Br·Bc`` exponentials.

        With the ``compute_rows`` option the units are timed for the rows rounded up to a
        multiple of it (the padded tile a kernel computes); the counts stay ``Br``."""
        pad = self.options.get("compute_rows")
        issue = -(-coef_rows // pad) * pad / coef_rows if pad and coef_rows > 0 else 1.0
        ops = [Op(self.instruction, 2.0 * self.d * coef_rows, sizes, issue)]
        if self.exp_class:
            ops.append(Op(self.exp_class, coef_rows, sizes, issue))
        ops.append(Op(self.instruction, 2.0 * self.d * coef_rows, sizes, issue))
        return tuple(ops)

    def _blocks_default(self, need, br=128, bc=128):
        w = self.workload
        br = self.options.get("block_q") or br
        bc = self.options.get("block_k") or bc
        given = self.options.get("block_q"), self.options.get("block_k")
        if all(given):
            return br, bc
        sizes = fit_blocks([br, bc], lambda a, b: need(min(a, w.seq_q), min(b, w.seq_k)),
                           self.sram_limit)
        if sizes is None:
            return br, bc        # reported by the fit check
        if given[0]:
            sizes[0] = br
        if given[1]:
            sizes[1] = bc
        return sizes[0], sizes[1]

    def _check_fit(self, need: float, detail: str) -> float:
        if need > self.sram_limit:
            w = self.workload
            raise self._too_big(f"block {self.br}x{self.bc} at d={w.head_dim} {w.dtype} "
                                f"stages={self.stages}", need, detail)
        return need

    @classmethod
    def _options(cls, node):
        return {"block_q": cls._block_option(node, "block_q"),
                "block_k": cls._block_option(node, "block_k"),
                **cls._compute_rows_option(node)}

    @classmethod
    def _compute_rows_option(cls, node) -> dict:
        # padded tensor-core work: only the schedules whose tiles have one row count per op
        if cls.kind not in ("flash2", "chunked", "flash_decoding"):
            return {}
        return {"compute_rows": node.opt("compute_rows", int, None, minimum=1)}

    @staticmethod
    def _kv_order_option(node) -> dict:
        # the order a block visits its key blocks: FA2's kernels run from the last (diagonal)
        # block down, so causal blocks of one head read different K/V blocks at a time
        return {"kv_order": node.opt("kv_order", ("forward", "reverse"), "forward")}

    def _resolved(self) -> dict:
        out = {"block_q": self.br, "block_k": self.bc}
        if self.options.get("compute_rows"):
            out["compute_rows"] = self.options["compute_rows"]
        if self.options.get("kv_order") == "reverse":
            out["kv_order"] = "reverse"
        return out


@register_schedule
class Flash2(_Attention):
    """FlashAttention-2 forward: one thread block per (batch, head, row block)."""

    kind = "flash2"

    @classmethod
    def _options(cls, node):
        return {**super()._options(node), "reload_q": node.opt("reload_q", bool, False),
                **cls._kv_order_option(node)}

    def _need(self, br, bc):
        d = self.workload.head_dim
        if self.options.get("reload_q"):    # Q_i streams through the stage buffers with K_j
            return self.stages * (br + 2 * bc) * d * self.workload.dtype_bytes
        return (br * d + self.stages * 2 * bc * d) * self.workload.dtype_bytes

    def _resolve(self):
        br, bc = self._blocks_default(self._need)
        self._shape(br, bc)
        held = (f"{self.stages} x (Q {br}x{self.d} + K+V {bc}x{self.d})"
                if self.options.get("reload_q")
                else f"Q {br}x{self.d} + {self.stages} x (K+V) {bc}x{self.d}")
        self.sram = self._check_fit(self._need(min(br, self.nq), min(bc, self.nk)),
                                    f"{held}, {self.workload.dtype}")

    def _resolved(self):
        out = super()._resolved()
        if self.options.get("reload_q"):
            out["reload_q"] = True
        return out

    def kernels(self):
        p = Program()
        Q, K, V = self._qkv(p, self.tr)
        O, L = p.tensor("O", self.bh * self.tr), p.tensor("L", self.bh * self.tr)
        de = self.d * self.e
        ops = [self._compute(float(ri), self.c) for ri in self.r]
        # operands read from SRAM per tile: Q_i, K_j, V_j (P stays in registers, as in FA2)
        opds = [(Access(Q.index, 0, 0, de * float(ri)), Access(K.index, 0, 0, de, self.c),
                 Access(V.index, 0, 0, de, self.c)) for ri in self.r]
        tr = self.tr
        reload_q = bool(self.options.get("reload_q"))

        def block(b):
            bh, i = divmod(b, tr)
            kv = self.kv_of(bh) * self.tc
            one = one_of(self._ones, i)
            q_once = Access(Q.index, Q.base + bh * tr, 1, de, self.r)
            js = self._rows[i]
            # reload_q: Q_i is loaded with every K/V block (cutlass fmha's first GEMM streams
            # both operands from global memory) instead of once before the loop
            segs = [] if reload_q else [Segment(one, loads=(q_once,))]
            if len(js):
                kv_loads = (Access(K.index, K.base + kv, 1, de, self.c),
                            Access(V.index, V.base + kv, 1, de, self.c))
                if reload_q:
                    kv_loads = (Access(Q.index, Q.base + bh * tr + i, 0, de * float(self.r[i])),
                                ) + kv_loads
                segs.append(Segment(js, loads=kv_loads, ops=ops[i], operands=opds[i]))
            segs.append(Segment(one, stores=(Access(O.index, O.base + bh * tr, 1, de, self.r),
                                             Access(L.index, L.base + bh * tr, 1, STATS,
                                                    self.r))))
            return tuple(segs)

        return [Kernel("flash2_fwd", self.bh * tr, self.sram, self.stages, block, p)]


@register_schedule
class Flash1(_Attention):
    """FlashAttention Algorithm 1: one thread block per (batch, head); outer loop over K/V
    blocks, inner loop over Q blocks (O, l, m read and written back per tile)."""

    kind = "flash1"
    default_stages = 1

    def _need(self, br, bc):
        d = self.workload.head_dim
        return (2 * bc * d + self.stages * 2 * br * d) * self.workload.dtype_bytes

    def _resolve(self):
        w = self.workload
        m = int(self.sram_limit // w.dtype_bytes)       # M in elements (paper's rule)
        bc_rule = -(-m // (4 * w.head_dim))
        gq, gk = self.options.get("block_q"), self.options.get("block_k")
        br = gq or min(bc_rule, w.head_dim)
        bc = gk or bc_rule

        def fits(br, bc):
            return self._need(min(br, w.seq_q), min(bc, w.seq_k)) <= self.sram_limit

        # The rule rounds up, so it can overshoot M by up to a row (d = 256 on h100-sxm:
        # Bc = Br = 114 needs 233,472 B > 227 KiB): then take the largest sizes that fit,
        # shrinking the defaulted size(s) one row at a time (Br = min(Bc, d) kept).
        while not fits(br, bc) and not (gq and gk):
            if not gk and bc > 1:
                bc -= 1
                br = gq or min(bc, w.head_dim)
            elif not gq and br > 1:
                br -= 1
            else:
                break
        self._shape(br, bc)
        self.sram = self._check_fit(
            self._need(min(br, self.nq), min(bc, self.nk)),
            f"K+V {bc}x{self.d} + {self.stages} x (Q+O) {br}x{self.d}, {w.dtype}")

    def kernels(self):
        p = Program()
        tr, tc = self.tr, self.tc
        Q, K, V = self._qkv(p, tr)
        O, l, m = (p.tensor(n, self.bh * tr) for n in ("O", "l", "m"))
        de = self.d * self.e
        all_rows = np.arange(tr, dtype=np.int64)
        cols = [np.flatnonzero(self.act[:, j]).astype(np.int64) for j in range(tc)]
        ops = [self._compute(float(cj), self.r) for cj in self.c]
        # operands per tile (i, j): Q_i, O_i, l_i, m_i and K_j, V_j (P in registers)
        opd_rows = (Access(Q.index, 0, 0, de, self.r), Access(O.index, 0, 0, de, self.r),
                    Access(l.index, 0, 0, STATS, self.r), Access(m.index, 0, 0, STATS, self.r))
        opds = [opd_rows + (Access(K.index, 0, 0, de * float(cj)),
                            Access(V.index, 0, 0, de * float(cj))) for cj in self.c]
        ones: dict = {}

        def block(bh):
            kv = self.kv_of(bh) * tc
            q0 = bh * tr
            rw = (Access(O.index, O.base + q0, 1, de, self.r),
                  Access(l.index, l.base + q0, 1, STATS, self.r),
                  Access(m.index, m.base + q0, 1, STATS, self.r))
            segs = [Segment(all_rows, stores=rw)]
            for j in range(tc):
                if not len(cols[j]):
                    continue
                segs.append(Segment(one_of(ones, j), loads=(
                    Access(K.index, K.base + kv, 1, de, self.c),
                    Access(V.index, V.base + kv, 1, de, self.c))))
                segs.append(Segment(cols[j], loads=(Access(Q.index, Q.base + q0, 1, de,
                                                           self.r),) + rw,
                                    ops=ops[j], stores=rw, operands=opds[j]))
            return tuple(segs)

        return [Kernel("flash1_fwd", self.bh, self.sram, self.stages, block, p)]


@register_schedule
class Standard(_Attention):
    """Algorithm 0: S = Q Kᵀ, P = softmax(S), O = P V as three kernels through memory."""

    kind = "standard"

    @classmethod
    def _options(cls, node):
        out = super()._options(node)
        out["intermediate_dtype"] = cls._dtype_option(node, "intermediate_dtype")
        return out

    def _needs(self, br, bc):
        d, e = self.workload.head_dim, self.workload.dtype_bytes
        ie = dtype_bytes(self.inter)
        return ((br + bc) * d * e + br * bc * ie,
                self.stages * 2 * br * bc * ie,
                self.stages * (br * bc * ie + bc * d * e))

    def _resolve(self):
        self.inter = self.options.get("intermediate_dtype") or self.workload.dtype
        br, bc = self._blocks_default(lambda a, b: max(self._needs(a, b)))
        self._shape(br, bc)
        self.sram3 = self._needs(min(br, self.nq), min(bc, self.nk))
        self._check_fit(max(self.sram3), f"largest of the three kernels' tiles, S/P in "
                                         f"{self.inter}")

    def _resolved(self):
        return {**super()._resolved(), "intermediate_dtype": self.inter}

    def kernels(self):
        p = Program()
        tr, tc = self.tr, self.tc
        Q, K, V = self._qkv(p, tr)
        S, P = p.tensor("S", self.bh * tr * tc), p.tensor("P", self.bh * tr * tc)
        O = p.tensor("O", self.bh * tr)
        de, ie = self.d * self.e, float(dtype_bytes(self.inter))
        all_cols = np.arange(tc, dtype=np.int64)
        ones: dict = {}

        def qk(b):
            bh, rest = divmod(b, tr * tc)
            i, j = divmod(rest, tc)
            ri = float(self.r[i])
            kv = self.kv_of(bh) * tc
            return (Segment(one_of(ones, j),
                            loads=(Access(Q.index, Q.base + bh * tr + i, 0, de * ri),
                                   Access(K.index, K.base + kv, 1, de, self.c)),
                            ops=(Op(self.instruction, 2.0 * self.d * ri, self.c),),
                            stores=(Access(S.index, S.base + (bh * tr + i) * tc, 1, ri * ie,
                                           self.c),),
                            operands=(Access(Q.index, 0, 0, de * ri),
                                      Access(K.index, 0, 0, de, self.c))),)

        def softmax(b):
            bh, i = divmod(b, tr)
            ri = float(self.r[i])
            row = (bh * tr + i) * tc
            ops = (Op(self.exp_class, ri, self.c),) if self.exp_class else ()
            return (Segment(all_cols, loads=(Access(S.index, S.base + row, 1, ri * ie, self.c),),
                            ops=ops,
                            stores=(Access(P.index, P.base + row, 1, ri * ie, self.c),),
                            operands=(Access(S.index, 0, 0, ri * ie, self.c),)),)

        def pv(b):
            bh, i = divmod(b, tr)
            ri = float(self.r[i])
            kv = self.kv_of(bh) * tc
            return (Segment(all_cols, loads=(Access(P.index, P.base + (bh * tr + i) * tc, 1,
                                                    ri * ie, self.c),
                                             Access(V.index, V.base + kv, 1, de, self.c)),
                            ops=(Op(self.instruction, 2.0 * self.d * ri, self.c),),
                            operands=(Access(P.index, 0, 0, ri * ie, self.c),
                                      Access(V.index, 0, 0, de, self.c))),
                    Segment(one_of(ones, i), stores=(Access(O.index, O.base + bh * tr, 1, de,
                                                            self.r),)))

        s1, s2, s3 = self.sram3
        return [Kernel("standard_qk", self.bh * tr * tc, s1, self.stages, qk, p),
                Kernel("standard_softmax", self.bh * tr, s2, self.stages, softmax, p),
                Kernel("standard_pv", self.bh * tr, s3, self.stages, pv, p)]


from .attention_more import Chunked, FlashDecoding, SquareTiling  # noqa: E402,F401
