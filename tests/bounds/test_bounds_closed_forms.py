"""Closed forms vs per-tile enumeration written here from docs/schedules.md, plus the
FlashAttention / Saha & Ye checks of papers.md sections 1, 2 and 12."""
from collections import defaultdict

import numpy as np
import pytest

from memsim.bounds import (ATTENTION_SCHEDULES, attention_traffic, flash1_block_sizes,
                           flash_decoding_splits, gemm_traffic, square_tiling_block)
from memsim.errors import InputError
from memsim.workloads.masks import BlockSparse, visible

F32 = 4


def _sizes(n, b):
    return [min(b, n - i * b) for i in range(-(-n // b))]


class _Tape:
    """Per-tensor bytes read/written, FLOPs and exps of an enumerated tile program."""

    def __init__(self):
        self.io = defaultdict(lambda: [0, 0])
        self.flops = self.exps = 0

    def r(self, t, n, size):
        self.io[t][0] += n * size

    def w(self, t, n, size):
        self.io[t][1] += n * size

    def tile(self, br, bc, d):   # QK^T and PV on one computed tile
        self.flops += 4 * br * bc * d
        self.exps += br * bc


def enumerate_schedule(schedule, nq, nk, d, e, ie, br, bc, mask, splits=None):
    """Per-(batch, head) tile program of docs/schedules.md, tile by tile."""
    vis = visible(np.arange(nq)[:, None], np.arange(nk)[None, :], nq, nk, **mask)
    rs, cs = _sizes(nq, br), _sizes(nk, bc)
    act = [[vis[i * br:(i + 1) * br, j * bc:(j + 1) * bc].any() for j in range(len(cs))]
           for i in range(len(rs))]
    t = _Tape()
    if schedule == "standard":
        for i, bri in enumerate(rs):
            for bcj in cs:
                t.r("Q", bri * d, e); t.r("K", bcj * d, e); t.w("S", bri * bcj, ie)
                t.tile(bri, bcj, d)
        for bri in rs:
            t.r("S", bri * nk, ie); t.w("P", bri * nk, ie)
        for bri in rs:
            for bcj in cs:
                t.r("P", bri * bcj, ie); t.r("V", bcj * d, e)
            t.w("O", bri * d, e)
    elif schedule == "flash1":
        t.w("O", nq * d, e); t.w("l", nq, F32); t.w("m", nq, F32)
        for j, bcj in enumerate(cs):
            if not any(act[i][j] for i in range(len(rs))):
                continue
            t.r("K", bcj * d, e); t.r("V", bcj * d, e)
            for i, bri in enumerate(rs):
                if act[i][j]:
                    t.r("Q", bri * d, e); t.r("O", bri * d, e)
                    t.r("l", bri, F32); t.r("m", bri, F32)
                    t.tile(bri, bcj, d)
                    t.w("O", bri * d, e); t.w("l", bri, F32); t.w("m", bri, F32)
    elif schedule == "flash2":
        for i, bri in enumerate(rs):
            t.r("Q", bri * d, e)
            for j, bcj in enumerate(cs):
                if act[i][j]:
                    t.r("K", bcj * d, e); t.r("V", bcj * d, e); t.tile(bri, bcj, d)
            t.w("O", bri * d, e); t.w("L", bri, F32)
    elif schedule == "square_tiling":
        ls = _sizes(d, br)   # square tiles: br == bc == B, also over d
        for i, bri in enumerate(rs):
            for j, bcj in enumerate(cs):
                if act[i][j]:
                    for bl in ls:
                        t.r("Q", bri * bl, e); t.r("K", bl * bcj, e)
                        t.flops += 2 * bri * bl * bcj
                    t.w("A", bri * bcj, ie); t.exps += bri * bcj
            t.w("D", bri, F32)
        for i, bri in enumerate(rs):
            t.r("D", bri, F32)
            for bl in ls:
                for k, bck in enumerate(cs):
                    if act[i][k]:
                        t.r("A", bri * bck, ie); t.r("V", bck * bl, e)
                        t.flops += 2 * bri * bck * bl
                t.w("O", bri * bl, e)
    elif schedule == "chunked":
        for i, bri in enumerate(rs):
            for j, bcj in enumerate(cs):
                if act[i][j]:
                    t.r("Q", bri * d, e); t.r("K", bcj * d, e); t.r("V", bcj * d, e)
                    t.tile(bri, bcj, d)
                    t.w("acc", bri * d, F32); t.w("ssum", bri, F32); t.w("smax", bri, F32)
        for i, bri in enumerate(rs):
            for j in range(len(cs)):
                if act[i][j]:
                    t.r("acc", bri * d, F32); t.r("ssum", bri, F32); t.r("smax", bri, F32)
            t.w("O", bri * d, e)
    elif schedule == "flash_decoding":
        colact = [vis[:, j * bc:(j + 1) * bc].any() for j in range(len(cs))]
        per = -(-len(cs) // splits)
        written = 0
        for s in range(splits):
            blocks = [j for j in range(s * per, min((s + 1) * per, len(cs))) if colact[j]]
            if not blocks:
                continue
            t.r("Q", nq * d, e)
            for j in blocks:
                t.r("K", cs[j] * d, e); t.r("V", cs[j] * d, e); t.tile(nq, cs[j], d)
            t.w("O_partial", nq * d, F32); t.w("L_partial", nq, F32)
            written += 1
        for _ in range(written):
            t.r("O_partial", nq * d, F32); t.r("L_partial", nq, F32)
        t.w("O", nq * d, e)
    return t


def _check(schedule, rng):
    nq, nk = int(rng.integers(1, 45)), int(rng.integers(1, 45))
    d = int(rng.choice([1, 3, 8, 16, 20]))
    e = float(rng.choice([0.5, 1, 2, 4]))
    e = int(e) if e >= 1 else e
    ie = [None, 4, 1][int(rng.integers(3))]
    br, bc = int(rng.integers(1, 17)), int(rng.integers(1, 17))
    causal = bool(rng.integers(2))
    window = None if rng.integers(2) else int(rng.integers(1, 20))
    sparse = None if rng.integers(2) else BlockSparse(float(rng.random()), int(rng.integers(1, 9)),
                                                      int(rng.integers(3)))
    if rng.integers(3) == 0:
        nq = int(rng.integers(1, 4))   # decode-like shapes
    mask = dict(causal=causal, window=window, sparse=sparse)
    batch, heads, kv_heads = 2, 4, int(rng.choice([1, 2, 4]))
    kw = dict(seq_q=nq, seq_k=nk, head_dim=d, dtype_bytes=e, batch=batch, heads=heads,
              kv_heads=kv_heads, intermediate_bytes=ie, **mask)
    splits = None
    if schedule == "square_tiling":
        br = bc = int(rng.integers(1, 9))
        kw["block"] = br
    elif schedule == "flash_decoding":
        splits = int(rng.integers(1, 6))
        kw.update(block_k=bc, splits=splits)
        br = nq
    else:
        kw.update(block_q=br, block_k=bc)
    got = attention_traffic(schedule, **kw)
    want = enumerate_schedule(schedule, nq, nk, d, e, e if ie is None else ie, br, bc, mask,
                              splits)
    scale = batch * heads
    want_io = {k: (r * scale, w * scale) for k, (r, w) in want.io.items() if r or w}
    assert got.bytes_by_tensor() == want_io, kw
    assert (got.flops, got.exps) == (want.flops * scale, want.exps * scale), kw
    assert got.read_bytes == sum(r for r, _ in want_io.values())
    assert got.write_bytes == sum(w for _, w in want_io.values())


@pytest.mark.parametrize("schedule", ATTENTION_SCHEDULES)
def test_closed_forms_match_enumeration(schedule):
    rng = np.random.default_rng(sorted(ATTENTION_SCHEDULES).index(schedule))
    for _ in range(120):
        _check(schedule, rng)


@pytest.mark.parametrize("nq,nk,d,br,bc", [(1000, 1000, 64, 64, 384), (16384, 16384, 128, 128, 128),
                                           (4097, 3001, 32, 96, 80), (1, 131072, 256, 1, 256)])
def test_unmasked_totals_of_the_doc(nq, nk, d, br, bc):
    """The 'Without masks' totals printed in docs/schedules.md, at large and uneven N."""
    e = 2
    tr, tc = -(-nq // br), -(-nk // bc)
    kw = dict(seq_q=nq, seq_k=nk, head_dim=d, dtype_bytes=e, block_q=br, block_k=bc)
    s = attention_traffic("standard", **kw)
    assert s.read_elements + s.write_elements == (tc * nq * d + tr * nk * d + nq * nk
                                                  + 2 * nq * nk + nq * nk + tr * nk * d + nq * d)
    f1 = attention_traffic("flash1", **kw)
    assert f1.read_bytes == (2 * nk * d + tc * 2 * nq * d) * e + tc * 2 * nq * F32
    assert f1.write_bytes == (nq * d + tc * nq * d) * e + (2 * nq + tc * 2 * nq) * F32
    f2 = attention_traffic("flash2", **kw)
    assert f2.read_bytes == (nq * d + tr * 2 * nk * d) * e
    assert f2.write_bytes == nq * d * e + nq * F32
    g = gemm_traffic(nq, nk, d, e, br, bc, 16)
    assert (g.read_elements, g.write_elements) == (nq * d * tc + d * nk * tr, nq * nk)
    assert g.flops == 2 * nq * nk * d


def test_gemm_matches_enumeration():
    m, n, k, tm, tn, tk = 37, 29, 23, 8, 5, 7
    reads = writes = flops = 0
    for a in _sizes(m, tm):
        for b in _sizes(n, tn):
            for c in _sizes(k, tk):
                reads += a * c + c * b
                flops += 2 * a * b * c
            writes += a * b
    g = gemm_traffic(m, n, k, 1, tm, tn, tk)
    assert (g.read_bytes, g.write_bytes, g.flops) == (reads, writes, flops)
    assert gemm_traffic(m, n, k, 0.5, tm, tn, tk).read_bytes == reads / 2   # packed int4


def test_fa1_block_sizes_papers_section_12():
    assert flash1_block_sizes(98_304, 64) == (64, 384)
    assert flash1_block_sizes(98_304, 128) == (128, 192)
    assert flash1_block_sizes(50_000, 64) == (64, 196)
    assert flash1_block_sizes(50_000, 128) == (98, 98)
    br, bc = flash1_block_sizes(98_304, 64)
    assert (-(-1024 // bc), -(-1024 // br)) == (3, 16)     # T_c = 3, T_r = 16
    assert square_tiling_block(98_304) == 156               # floor(sqrt(24576)) = 156.77
    assert square_tiling_block(4) == 1 and square_tiling_block(63) == 3


def test_standard_is_4Nd_plus_4N2_and_gpt2_medium_bytes():
    n, d = 1024, 64
    s = attention_traffic("standard", seq_q=n, seq_k=n, head_dim=d, dtype_bytes=2,
                          block_q=n, block_k=n)
    assert s.read_elements + s.write_elements == 4 * n * d + 4 * n * n == 4_456_448
    gpt2 = attention_traffic("standard", seq_q=n, seq_k=n, head_dim=d, dtype_bytes=2,
                             block_q=n, block_k=n, batch=64, heads=16)
    assert gpt2.total_bytes == 4_456_448 * 16 * 64 * 2            # 9.13 GB forward
    # PyTorch's math path keeps S and P in fp32: the 4N^2 term doubles in bytes
    s32 = attention_traffic("standard", seq_q=n, seq_k=n, head_dim=d, dtype_bytes=2,
                            block_q=n, block_k=n, intermediate_bytes=4)
    assert s32.total_bytes - s.total_bytes == 4 * n * n * 2


def test_flash1_is_2Nd_plus_3NdTc_plus_init_and_statistics():
    """papers.md counts 2Nd + 3Nd*T_c = 720,896 elements; Algorithm 1 as written in the doc
    also initialises O, l, m (Nd + 2N writes) and moves l and m per tile (4N per pass)."""
    n, d = 1024, 64
    t = attention_traffic("flash1", seq_q=n, seq_k=n, head_dim=d, dtype_bytes=2,
                          sram_elements=98_304)
    tc = 3
    qkvo = sum(t.tensors[k].read_elements + t.tensors[k].write_elements for k in "QKVO")
    stats = sum(t.tensors[k].read_elements + t.tensors[k].write_elements for k in "lm")
    assert qkvo - n * d == 2 * n * d + 3 * n * d * tc == 720_896      # minus the init write
    assert stats == 2 * n + 4 * n * tc
    std = attention_traffic("standard", seq_q=n, seq_k=n, head_dim=d, dtype_bytes=2,
                            block_q=n, block_k=n)
    assert round((std.read_elements + std.write_elements) / 720_896, 2) == 6.18


def _fit_square(m, d):
    """Largest B with Q_i, K_j, V_j, O_i (4*B*d) and S_ij (B*B) in M elements."""
    b = 0
    while 4 * (b + 1) * d + (b + 1) ** 2 <= m:
        b += 1
    return b


@pytest.mark.parametrize("causal", [False, True])
def test_flash_traffic_falls_as_sram_grows(causal):
    n, d = 4096, 64
    ms = [2 ** p for p in range(8, 19)]
    f1 = [attention_traffic("flash1", seq_q=n, seq_k=n, head_dim=d, dtype_bytes=2,
                            sram_elements=m, causal=causal).total_bytes for m in ms]
    f2 = []
    for m in ms[2:]:
        b = _fit_square(m, d)
        f2.append(attention_traffic("flash2", seq_q=n, seq_k=n, head_dim=d, dtype_bytes=2,
                                    block_q=b, block_k=b, causal=causal).total_bytes)
    for seq in (f1, f2):
        assert all(a >= b for a, b in zip(seq, seq[1:])), seq
        assert seq[-1] * 4 < seq[0]


@pytest.mark.parametrize("d", [64, 128, 256])
def test_square_tiling_beats_flash1_below_d_squared(d):
    """Saha & Ye: for M < d^2 the square tiling moves fewer bytes than FlashAttention."""
    n = 4096
    for m in [2 ** p for p in range(6, 20)]:
        kw = dict(seq_q=n, seq_k=n, head_dim=d, dtype_bytes=2, sram_elements=m)
        sq = attention_traffic("square_tiling", **kw).total_bytes
        f1 = attention_traffic("flash1", **kw).total_bytes
        if m < d * d:
            assert sq < f1, (d, m)
        if m >= 4 * d * d:
            assert sq > f1, (d, m)   # and FlashAttention wins in the large-cache regime


def test_causal_skips_about_half():
    kw = dict(seq_q=8192, seq_k=8192, head_dim=128, dtype_bytes=2, block_q=128, block_k=128)
    full = attention_traffic("flash2", **kw)
    causal = attention_traffic("flash2", causal=True, **kw)
    assert causal.flops == 4 * 128 * (128 * 128) * (64 * 65 // 2)   # 64x64 tiles, lower half
    assert causal.tensors["K"].read_elements == 128 * 128 * 64 * 65 // 2
    assert full.flops == 4 * 8192 * 8192 * 128


def test_flash_decoding_splits_heuristic_and_gqa_counts_per_query_head():
    assert flash_decoding_splits(1, 8, 132, 64) == 17
    assert flash_decoding_splits(1, 8, 132, 10) == 10       # capped at T_c
    assert flash_decoding_splits(64, 32, 132, 10) == 1
    kw = dict(seq_q=1, seq_k=65536, head_dim=128, dtype_bytes=2, block_k=256, batch=1,
              heads=16, num_sms=108)
    a = attention_traffic("flash_decoding", kv_heads=16, **kw)
    b = attention_traffic("flash_decoding", kv_heads=2, **kw)
    assert a == b                      # SRAM boundary: every query head loads its own K/V
    assert a.tensors["K"].read_elements == 16 * 65536 * 128
    assert a.tensors["O_partial"].write_elements == 16 * 7 * 128   # ceil(108/16) = 7 splits


def test_bad_input():
    kw = dict(seq_q=8, seq_k=8, head_dim=4, dtype_bytes=2)
    with pytest.raises(InputError, match="unknown attention schedule"):
        attention_traffic("flash9", block_q=2, block_k=2, **kw)
    with pytest.raises(InputError, match="needs"):
        attention_traffic("flash2", **kw)
    with pytest.raises(InputError, match='"kv_heads" must divide'):
        attention_traffic("flash2", block_q=2, block_k=2, heads=4, kv_heads=3, **kw)
    with pytest.raises(InputError, match='"dtype_bytes"'):
        attention_traffic("flash2", seq_q=8, seq_k=8, head_dim=4, dtype_bytes=3, block_q=2,
                          block_k=2)
