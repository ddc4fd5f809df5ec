"""Differential tests: the simulator's SRAM-boundary bytes equal memsim.bounds.closed_forms
(written independently from docs/schedules.md) for every schedule, to the byte."""
import pytest

from memsim.bounds import attention_traffic, gemm_traffic
from memsim.dtypes import dtype_bytes
from memsim.engine import simulate_program
from memsim.hardware import load_hardware
from memsim.schedulers import get_schedule
from memsim.workloads import AttentionWorkload, BlockSparse, GemmWorkload

HW = load_hardware("h100-sxm")
SPARSE = BlockSparse(0.3, 64, 1)

# (seq_q, seq_k, head_dim, causal, window, sparse, kv_heads): non-divisible sizes, every d,
# masks and GQA (heads = 4)
SHAPES = [
    (1, 1, 32, False, None, None, 4),
    (100, 300, 64, True, None, None, 1),
    (257, 257, 128, True, 31, None, 2),
    (300, 200, 32, False, 50, None, 4),
    (500, 500, 64, True, None, SPARSE, 1),
    (129, 1000, 256, False, None, None, 2),
    (1000, 1000, 128, False, None, SPARSE, 4),
]
ATTENTION = ["standard", "flash1", "flash2", "square_tiling", "chunked"]


def _closed_form(kind, w, res):
    kw = dict(seq_q=w.seq_q, seq_k=w.seq_k, head_dim=w.head_dim, dtype_bytes=w.dtype_bytes,
              batch=w.batch, heads=w.heads, kv_heads=w.kv_heads, causal=w.causal,
              window=w.window, sparse=w.sparse)
    if kind == "square_tiling":
        kw["block"] = res["block"]
    elif kind == "flash_decoding":
        kw.update(block_k=res["block_k"], splits=res["splits"])
    else:
        kw.update(block_q=res["block_q"], block_k=res["block_k"])
    if "intermediate_dtype" in res:
        kw["intermediate_bytes"] = dtype_bytes(res["intermediate_dtype"])
    if res.get("reload_q"):
        kw["reload_q"] = True
    return attention_traffic(kind, **kw)


def _check(kind, w, options=None, granularity="block"):
    sched = get_schedule(kind).from_dict(options or {}, w, HW)
    er = simulate_program(HW, sched.kernels(), granularity=granularity)
    cf = _closed_form(kind, w, sched.resolved())
    got = {k: (v["l2_read"], v["l2_write"]) for k, v in er.tensors.items()
           if v["l2_read"] or v["l2_write"]}
    assert got == cf.bytes_by_tensor()
    assert er.levels["l2"].read_bytes == cf.read_bytes
    assert er.levels["l2"].write_bytes == cf.write_bytes
    assert er.flops_by_class[sched.instruction] == cf.flops
    assert er.flops_by_class.get("exp_sfu", 0) == cf.exps
    return er


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}d{s[2]}")
@pytest.mark.parametrize("kind", ATTENTION)
def test_attention_bytes_equal_closed_forms(kind, shape):
    nq, nk, d, causal, window, sparse, kvh = shape
    w = AttentionWorkload(2, 4, kvh, nq, nk, d, causal, window, sparse, "bf16")
    # flash1's paper rule (Bc = ceil(M/4d)) overshoots 227 KiB at d = 256 by rounding up
    opts = {"block_k": 64} if kind == "flash1" and d == 256 else {}
    _check(kind, w, opts)


@pytest.mark.parametrize("nq,nk,causal", [(1, 1000, False), (1, 5000, False), (4, 3000, True),
                                          (2, 16384, False)])
def test_flash_decoding_bytes_equal_closed_forms(nq, nk, causal):
    w = AttentionWorkload(2, 8, 2, nq, nk, 128, causal, None, None, "bf16")
    _check("flash_decoding", w)


def test_explicit_options_and_other_dtypes():
    w = AttentionWorkload(1, 2, 1, 777, 777, 64, True, None, None, "fp16")
    _check("flash2", w, {"block_q": 96, "block_k": 80, "stages": 3})
    _check("standard", w, {"intermediate_dtype": "fp32", "block_q": 100, "block_k": 60})
    _check("square_tiling", w, {"block": 40, "intermediate_dtype": "fp32"})
    _check("chunked", w, {"block_q": 200, "block_k": 300})
    _check("flash1", w, {"block_q": 50, "block_k": 333})


@pytest.mark.parametrize("granularity", ["block", "tile"])
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}d{s[2]}")
def test_flash2_reload_q_bytes_equal_closed_forms(shape, granularity):
    """cutlass fmha's order: Q_i loaded with every active K/V block (masks, GQA, ragged)."""
    nq, nk, d, causal, window, sparse, kvh = shape
    w = AttentionWorkload(2, 4, kvh, nq, nk, d, causal, window, sparse, "bf16")
    er = _check("flash2", w, {"reload_q": True, "block_q": 64, "block_k": 64},
                granularity=granularity)
    plain = _check("flash2", w, {"block_q": 64, "block_k": 64})
    # only Q changes: once per row block before, once per active tile now
    assert er.tensors["K"] == plain.tensors["K"] and er.tensors["O"] == plain.tensors["O"]
    if not (causal or window or sparse):      # every tile active: Q read once per key block
        assert er.tensors["Q"]["l2_read"] == plain.tensors["Q"]["l2_read"] * -(-nk // 64)


def test_long_sequence_flash2_block_mode():
    w = AttentionWorkload(1, 2, 2, 16384, 16384, 128, True, None, None, "bf16")
    _check("flash2", w)


@pytest.mark.parametrize("m,n,k", [(1, 1, 1), (1000, 3000, 500), (4096, 512, 1024)])
def test_gemm_bytes_equal_closed_forms(m, n, k):
    w = GemmWorkload(m, n, k, "bf16")
    sched = get_schedule("gemm_tiled").from_dict({}, w, HW)
    res = sched.resolved()
    er = simulate_program(HW, sched.kernels(), granularity="block")
    cf = gemm_traffic(m, n, k, 2, res["tile_m"], res["tile_n"], res["tile_k"])
    got = {t: (v["l2_read"], v["l2_write"]) for t, v in er.tensors.items()}
    assert got == cf.bytes_by_tensor()
    assert er.flops == cf.flops


def test_tile_and_block_count_the_same_bytes():
    w = AttentionWorkload(1, 4, 2, 700, 900, 64, True, 300, None, "bf16")
    for kind in ATTENTION:
        sched = get_schedule(kind).from_dict({}, w, HW)
        ks = sched.kernels()
        a = simulate_program(HW, ks, granularity="tile")
        b = simulate_program(HW, ks, granularity="block")
        assert a.levels == b.levels and a.tensors == b.tensors
        assert a.flops_by_class == b.flops_by_class
