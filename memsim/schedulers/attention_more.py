"""The other attention schedules: square_tiling (Saha & Ye), chunked (Rabe & Staats) and
flash_decoding (split-KV), per docs/schedules.md."""
from __future__ import annotations

import math


import numpy as np

from ..dtypes import dtype_bytes
from ..engine.program import Access, Kernel, Op, Program, Segment
from ..workloads.masks import block_sizes
from .attention import STATS, _Attention
from .base import fit_blocks, one_of, register_schedule

__all__ = ["SquareTiling", "Chunked", "FlashDecoding"]


@register_schedule
class SquareTiling(_Attention):
    """Saha & Ye Theorem 3.5: B×B tiles (also over d); exp(QKᵀ) written to memory (phase 1),
    then O = D⁻¹ A V (phase 2)."""

    kind = "square_tiling"
    default_stages = 1

    @classmethod
    def _options(cls, node):
        return {"block": cls._block_option(node, "block"),
                "intermediate_dtype": cls._dtype_option(node, "intermediate_dtype")}

    def _need(self, b):
        e, ie = self.workload.dtype_bytes, dtype_bytes(self.inter)
        return self.stages * 2 * b * b * e + b * b * ie + STATS * b

    def _resolve(self):
        w = self.workload
        self.inter = self.options.get("intermediate_dtype") or w.dtype
        m = int(self.sram_limit // w.dtype_bytes)
        b = self.options.get("block") or math.isqrt(m) // 2     # floor(sqrt(M/4))
        self._shape(b, b)
        self.bl = block_sizes(self.d, b).astype(np.float64)      # B_l, d-blocks
        self.td = len(self.bl)
        bq, bk, bd = min(b, self.nq), min(b, self.nk), min(b, self.d)
        need = (self.stages * (bq * bd + bd * bk) * w.dtype_bytes + bq * bk * dtype_bytes(
            self.inter) + STATS * bq)
        self.sram = self._check_fit(need, f"{self.stages} x (Q+Kᵀ) tiles + A tile + D")

    def _resolved(self):
        return {"block": self.br, "block_q": self.br, "block_k": self.bc,
                "intermediate_dtype": self.inter}

    def kernels(self):
        p = Program()
        w = self.workload
        nkv = w.batch * w.kv_heads
        tr, tc, td = self.tr, self.tc, self.td
        Q = p.tensor("Q", self.bh * tr * td)
        K = p.tensor("K", nkv * tc * td)
        A = p.tensor("A", self.bh * tr * tc)
        D = p.tensor("D", self.bh * tr)
        V = p.tensor("V", nkv * tc * td)
        O = p.tensor("O", self.bh * tr * td)
        e, ie = self.e, float(dtype_bytes(self.inter))
        dblocks = np.arange(td, dtype=np.int64)
        ones: dict = {}
        ones_l: dict = {}
        cols = [np.flatnonzero(self.act[i]).astype(np.int64) for i in range(tr)]
        exp = self.exp_class

        def phase1(b):
            bh, i = divmod(b, tr)
            ri = float(self.r[i])
            kv = self.kv_of(bh)
            segs = []
            for j in cols[i]:
                cj = float(self.c[j])
                segs.append(Segment(dblocks, loads=(
                    Access(Q.index, Q.base + (bh * tr + i) * td, 1, ri * e, self.bl),
                    Access(K.index, K.base + (kv * tc + j) * td, 1, cj * e, self.bl)),
                    ops=(Op(self.instruction, 2.0 * ri * cj, self.bl),),
                    operands=(Access(Q.index, 0, 0, ri * e, self.bl),
                              Access(K.index, 0, 0, cj * e, self.bl))))
                segs.append(Segment(one_of(ones, int(j)),
                                    ops=(Op(exp, ri, self.c),) if exp else (),
                                    stores=(Access(A.index, A.base + (bh * tr + i) * tc, 1,
                                                   ri * ie, self.c),)))
            segs.append(Segment(one_of(ones, i), stores=(Access(D.index, D.base + bh * tr, 1,
                                                                STATS, self.r),)))
            return tuple(segs)

        def phase2(b):
            bh, i = divmod(b, tr)
            ri = float(self.r[i])
            kv = self.kv_of(bh)
            segs = [Segment(one_of(ones, i), loads=(Access(D.index, D.base + bh * tr, 1, STATS,
                                                           self.r),))]
            ks = cols[i]
            for l in range(td):
                bl = float(self.bl[l])
                if len(ks):
                    segs.append(Segment(ks, loads=(
                        Access(A.index, A.base + (bh * tr + i) * tc, 1, ri * ie, self.c),
                        Access(V.index, V.base + kv * tc * td + l, td, bl * e, self.c)),
                        ops=(Op(self.instruction, 2.0 * ri * bl, self.c),),
                        operands=(Access(A.index, 0, 0, ri * ie, self.c),
                                  Access(V.index, 0, 0, bl * e, self.c))))
                # O[i, l] = D_i^-1 (A V)[i, l]: D_i is read from SRAM for each d-block
                segs.append(Segment(one_of(ones_l, l), stores=(
                    Access(O.index, O.base + (bh * tr + i) * td, 1, ri * e, self.bl),),
                    operands=(Access(D.index, 0, 0, ri * STATS),)))
            return tuple(segs)

        return [Kernel("square_tiling_exp", self.bh * tr, self.sram, self.stages, phase1, p),
                Kernel("square_tiling_av", self.bh * tr, self.sram, self.stages, phase2, p)]


@register_schedule
class Chunked(_Attention):
    """Rabe & Staats: per (query chunk, key chunk) summaries written out, then combined."""

    kind = "chunked"

    def _need(self, br, bc):
        d, e = self.workload.head_dim, self.workload.dtype_bytes
        return (br * d + self.stages * 2 * bc * d) * e + (br * d + 2 * br) * STATS

    def _resolve(self):
        br, bc = self._blocks_default(self._need, 1024, 4096)
        self._shape(br, bc)
        bq, bk = min(br, self.nq), min(bc, self.nk)
        self.sram = self._check_fit(self._need(bq, bk), "Q chunk + stages x (K+V) chunks + "
                                                        "fp32 summary")
        self.sram_combine = (self.stages + 1) * (bq * self.d + 2 * bq) * STATS

    def kernels(self):
        p = Program()
        tr, tc = self.tr, self.tc
        Q, K, V = self._qkv(p, tr)
        acc, ssum, smax = (p.tensor(n, self.bh * tr * tc) for n in ("acc", "ssum", "smax"))
        O = p.tensor("O", self.bh * tr)
        de = self.d * self.e
        ones: dict = {}

        def summaries(bh, i):
            ri, row = float(self.r[i]), (bh * tr + i) * tc
            return (Access(acc.index, acc.base + row, 1, ri * self.d * STATS),
                    Access(ssum.index, ssum.base + row, 1, ri * STATS),
                    Access(smax.index, smax.base + row, 1, ri * STATS))

        def chunks(b):
            bh, i = divmod(b, tr)
            js = self._rows[i]
            if not len(js):
                return ()
            kv = self.kv_of(bh) * tc
            return (Segment(js, loads=(Access(Q.index, Q.base + bh * tr + i, 0,
                                              de * float(self.r[i])),
                                       Access(K.index, K.base + kv, 1, de, self.c),
                                       Access(V.index, V.base + kv, 1, de, self.c)),
                            ops=self._compute(float(self.r[i]), self.c),
                            stores=summaries(bh, i),
                            operands=(Access(Q.index, 0, 0, de * float(self.r[i])),
                                      Access(K.index, 0, 0, de, self.c),
                                      Access(V.index, 0, 0, de, self.c))),)

        def combine(b):
            bh, i = divmod(b, tr)
            js = self._rows[i]
            segs = [Segment(js, loads=summaries(bh, i), operands=summaries(bh, i))] \
                if len(js) else []
            segs.append(Segment(one_of(ones, i), stores=(Access(O.index, O.base + bh * tr, 1,
                                                                de, self.r),)))
            return tuple(segs)

        return [Kernel("chunked_summaries", self.bh * tr, self.sram, self.stages, chunks, p),
                Kernel("chunked_combine", self.bh * tr, self.sram_combine, self.stages,
                       combine, p)]


@register_schedule
class FlashDecoding(_Attention):
    """Split-KV decoding: each (batch, head, split) attends its key blocks with all query rows
    as one block, writes a partial output and log-sum-exp; a combine kernel reduces them."""

    kind = "flash_decoding"

    @classmethod
    def _options(cls, node):
        return {"block_k": cls._block_option(node, "block_k"),
                "splits": node.opt("splits", int, None, minimum=1),
                **cls._compute_rows_option(node), **cls._kv_order_option(node)}

    def _need(self, bc):
        w = self.workload
        nq, d = w.seq_q, w.head_dim
        return (nq * d + self.stages * 2 * bc * d) * w.dtype_bytes + nq * d * STATS

    def _resolve(self):
        w = self.workload
        bc = self.options.get("block_k")
        if bc is None:
            fit = fit_blocks([128], lambda b: self._need(min(b, w.seq_k)), self.sram_limit)
            bc = fit[0] if fit else 128
        self._shape(w.seq_q, bc)
        self.sram = self._check_fit(self._need(min(bc, self.nk)),
                                    f"all {self.nq} query rows + {self.stages} x (K+V) "
                                    f"{bc}x{self.d} + fp32 accumulator")
        given = self.options.get("splits")
        self.splits = given or min(max(1, -(-self.hw.gpu.sms // self.bh)), self.tc)
        self.per = -(-self.tc // self.splits)
        cols = self._rows[0]            # in kv_order
        self.split_cols = [cols[(cols >= s * self.per) & (cols < (s + 1) * self.per)]
                           for s in range(self.splits)]
        self.live = np.array([s for s in range(self.splits) if len(self.split_cols[s])],
                             dtype=np.int64)
        self.sram_combine = (self.stages + 1) * (self.nq * self.d + self.nq) * STATS

    def _resolved(self):
        return {**super()._resolved(), "block_q": self.nq, "splits": self.splits}

    def kernels(self):
        p = Program()
        tc, S = self.tc, self.splits
        Q, K, V = self._qkv(p, 1)
        Op_, Lp = p.tensor("O_partial", self.bh * S), p.tensor("L_partial", self.bh * S)
        O = p.tensor("O", self.bh)
        nq, de = float(self.nq), self.d * self.e
        zero = np.zeros(1, dtype=np.int64)
        ops = self._compute(nq, self.c)
        opds = (Access(Q.index, 0, 0, nq * de), Access(K.index, 0, 0, de, self.c),
                Access(V.index, 0, 0, de, self.c))

        def split(b):
            bh, s = divmod(b, S)
            js = self.split_cols[s]
            if not len(js):
                return ()
            kv = self.kv_of(bh) * tc
            return (Segment(zero, loads=(Access(Q.index, Q.base + bh, 0, nq * de),)),
                    Segment(js, loads=(Access(K.index, K.base + kv, 1, de, self.c),
                                       Access(V.index, V.base + kv, 1, de, self.c)), ops=ops,
                            operands=opds),
                    Segment(zero, stores=(
                        Access(Op_.index, Op_.base + bh * S + s, 0, nq * self.d * STATS),
                        Access(Lp.index, Lp.base + bh * S + s, 0, nq * STATS))))

        def combine(bh):
            segs = []
            if len(self.live):
                partials = (Access(Op_.index, Op_.base + bh * S, 1, nq * self.d * STATS),
                            Access(Lp.index, Lp.base + bh * S, 1, nq * STATS))
                segs.append(Segment(self.live, loads=partials, operands=partials))
            segs.append(Segment(zero, stores=(Access(O.index, O.base + bh, 0, nq * de),)))
            return tuple(segs)

        return [Kernel("flash_decoding_split", self.bh * S, self.sram, self.stages, split, p),
                Kernel("flash_decoding_combine", self.bh, self.sram_combine, self.stages,
                       combine, p)]
