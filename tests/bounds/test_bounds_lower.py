"""I/O lower bounds: every schedule's closed-form traffic is >= the bound, the terms and their
regimes (Saha & Ye crossover), and the matmul bound of Smith et al."""
import math

import pytest

from memsim.bounds import (attention_lower_bound, attention_traffic, gemm_traffic,
                           matmul_lower_bound)
from memsim.errors import InputError
from memsim.workloads.masks import BlockSparse


def _fit(m, d, k):
    """Largest B with k*B*d + B*B <= M (the tiles a schedule keeps on chip)."""
    b = 0
    while k * (b + 1) * d + (b + 1) ** 2 <= m:
        b += 1
    return b


MASKS = [dict(), dict(causal=True), dict(causal=True, window=300), dict(window=100),
         dict(causal=True, sparse=BlockSparse(0.3, 64, 1))]


def _schedules(n_q, n_k, d, m, kw):
    """Each schedule with block sizes whose working set fits in M elements (flash1 by the
    paper's own rule, which may exceed M by its constant factor)."""
    out = {}
    if m >= d:
        out["flash1"] = attention_traffic("flash1", sram_elements=m, **kw)
    if m >= 4:
        out["square_tiling"] = attention_traffic("square_tiling", sram_elements=m, **kw)
    b = _fit(m, d, 2)   # Q_i, K_j, S_ij
    if b:
        out["standard"] = attention_traffic("standard", block_q=b, block_k=b, **kw)
    b = _fit(m, d, 4)   # Q_i, K_j, V_j, O_i + S_ij
    if b:
        out["flash2"] = attention_traffic("flash2", block_q=b, block_k=b, **kw)
        out["chunked"] = attention_traffic("chunked", block_q=b, block_k=b, **kw)
    if n_q <= 16:
        bk = (m - 2 * n_q * d) // (2 * d + n_q)   # Q, O rows + K_j, V_j + scores
        if bk >= 1:
            out["flash_decoding"] = attention_traffic("flash_decoding", block_k=bk,
                                                      num_sms=132, **kw)
    return out


@pytest.mark.parametrize("n_q,n_k", [(1, 1), (7, 7), (1, 4096), (300, 300), (1024, 1024),
                                     (4096, 4096), (1000, 3000), (16384, 16384)])
def test_every_schedule_is_above_the_bound(n_q, n_k):
    checked = 0
    big = n_q * n_k > 1024 * 1024   # keep big shapes to a sub-grid so the test stays fast
    for d in (64, 256) if big else (32, 64, 128, 256):
        for m in (64, 1024, 8192, 49_152, 114_688):
            if m < 1024 and big:
                continue   # millions of tiny masked tiles: slow, and covered at smaller N
            masks = MASKS if not big else MASKS[:3] if m >= 8192 else MASKS[:1]
            for mask in masks:
                for e, ie in ((2, None),) if big else ((2, None), (2, 4), (1, 2)):
                    kw = dict(seq_q=n_q, seq_k=n_k, head_dim=d, dtype_bytes=e, batch=2,
                              heads=4, kv_heads=2, intermediate_bytes=ie, **mask)
                    lb = attention_lower_bound(sram_bytes=m * e, **kw)
                    for name, t in _schedules(n_q, n_k, d, m, kw).items():
                        assert t.total_bytes >= lb.io_bytes, (name, kw, m, lb.formula)
                        checked += 1
    assert checked > 30


def test_compulsory_term_is_exact():
    lb = attention_lower_bound(seq_q=1000, seq_k=1000, head_dim=64, dtype_bytes=2,
                               sram_bytes=1e12)   # huge SRAM: only the compulsory term
    assert lb.binding == "compulsory"
    assert lb.io_bytes == (3 * 1000 * 64 + 1000 * 64) * 2
    # flash2 with whole-sequence blocks reaches it up to its L write (fp32 per row)
    t = attention_traffic("flash2", seq_q=1000, seq_k=1000, head_dim=64, dtype_bytes=2,
                          block_q=1000, block_k=1000)
    assert t.total_bytes - lb.io_bytes == 1000 * 4
    # GQA: K/V counted once per key/value head; masks drop rows/keys nobody needs
    g = attention_lower_bound(seq_q=10, seq_k=10, head_dim=8, dtype_bytes=2, sram_bytes=1e9,
                              heads=8, kv_heads=2)
    assert g.io_bytes == (8 * (10 * 8 + 10 * 8) + 2 * 2 * 10 * 8) * 2
    c = attention_lower_bound(seq_q=20, seq_k=10, head_dim=8, dtype_bytes=2, sram_bytes=1e9,
                              causal=True)       # rows 0..9 see no key (p < 0)
    assert c.io_bytes == (10 * 8 + 2 * 10 * 8 + 20 * 8) * 2


def test_saha_ye_crossover_n4096_d64():
    """papers.md 2 and 12: at M = d^2 both Theta branches equal N^2; at M = 16 d^2 the
    FlashAttention branch N^2 d^2 / M is 4x below N^2 d / sqrt(M)."""
    n, d = 4096, 64
    m = d * d
    assert n * n * d * d // m == n * n * d // math.isqrt(m) == n * n == 16_777_216
    m = 16 * d * d
    assert (n * n * d * d // m, n * n * d // math.isqrt(m)) == (1_048_576, 4_194_304)
    # our constants: the small-cache term is exactly 2N^2d/sqrt(M) - 2M - N^2 words ...
    lb = attention_lower_bound(seq_q=n, seq_k=n, head_dim=d, dtype_bytes=2, sram_bytes=2 * d * d)
    assert lb.binding == "small_cache"
    assert lb.terms["small_cache"] == (2 * n * n * d / d - 2 * d * d - n * n) * 2
    # ... and the large-cache term P d^2/(M + 3d^2) - M; at M = 16 d^2: N^2/19 - M words
    lb = attention_lower_bound(seq_q=n, seq_k=n, head_dim=d, dtype_bytes=2,
                               sram_bytes=2 * 16 * d * d)
    assert lb.terms["large_cache"] == pytest.approx((n * n / 19 - 16 * d * d) * 2, rel=1e-12)
    assert lb.terms["small_cache"] == 0       # 2N^2/4 - 2M - N^2 < 0: not informative there
    assert lb.binding == "compulsory"         # 4Nd = 1,048,576 > N^2/19 - M = 817,475


def test_regimes_switch_at_d_squared():
    n, d = 16384, 128
    small = attention_lower_bound(seq_q=n, seq_k=n, head_dim=d, dtype_bytes=2,
                                  sram_bytes=2 * d * d // 16)
    large = attention_lower_bound(seq_q=n, seq_k=n, head_dim=d, dtype_bytes=2,
                                  sram_bytes=2 * 8 * d * d)
    assert small.binding == "small_cache" and large.binding == "large_cache"
    # below d^2 the bound falls as 1/sqrt(M): 2N^2 d/sqrt(M) - 2M - N^2 words
    for m, lead in ((256, 16), (1024, 8)):
        lb = attention_lower_bound(seq_q=n, seq_k=n, head_dim=d, dtype_bytes=2, sram_bytes=2 * m)
        assert lb.io_bytes == ((lead - 1) * n * n - 2 * m) * 2


def test_matmul_bound_smith_and_naive_tiling_ratio():
    n, m = 4096, 3 * 64 * 64          # three 64x64 tiles fill M exactly
    lb = matmul_lower_bound(n, n, n, 2, 2 * m)
    assert lb.binding == "matmul"
    assert lb.io_bytes == pytest.approx((2 * n ** 3 / math.sqrt(m) - 2 * m) * 2, rel=1e-12)
    t = gemm_traffic(n, n, n, 2, 64, 64, 64)
    # papers.md 3: the naive tiling reads 2n^3/b = 2*sqrt(3) n^3/sqrt(M), 1.73x Smith's bound
    assert t.read_elements == 2 * n ** 3 // 64
    assert t.read_bytes / lb.io_bytes == pytest.approx(math.sqrt(3), rel=1e-3)
    small = matmul_lower_bound(8, 8, 8, 2, 1e6)
    assert small.binding == "compulsory" and small.io_bytes == 3 * 64 * 2
    for mm, nn, kk, tm, tn in [(100, 300, 50, 16, 16), (4096, 128, 4096, 32, 64), (1, 4096, 4096, 1, 128)]:
        sram = (tm * 16 + 16 * tn + tm * tn) * 2
        assert gemm_traffic(mm, nn, kk, 2, tm, tn, 16).total_bytes >= \
            matmul_lower_bound(mm, nn, kk, 2, sram).io_bytes


def test_ratio_and_errors():
    lb = matmul_lower_bound(8, 8, 8, 2, 1e6)
    assert lb.ratio(2 * lb.io_bytes) == 2
    with pytest.raises(InputError, match='"sram_bytes"'):
        attention_lower_bound(seq_q=8, seq_k=8, head_dim=4, dtype_bytes=2, sram_bytes=0)
    with pytest.raises(InputError, match='"kv_heads" must divide'):
        attention_lower_bound(seq_q=8, seq_k=8, head_dim=4, dtype_bytes=2, sram_bytes=100,
                              heads=4, kv_heads=3)
