"""Differential test: the simulator's SRAM-boundary traffic (``levels.l2.read_bytes`` and
``levels.l2.write_bytes`` of a full ``memsim.simulate`` run) equals the independent closed
forms of ``memsim.bounds.closed_forms`` to the byte, for every schedule over a grid of shapes
(N from 1 to 16K, sizes that are not multiples of the blocks, d in {32, 64, 128, 256}, causal,
sliding window, block-sparse, GQA/MQA). The closed forms get the schedule's *resolved* options,
so the test checks the tile programs and the engine's counters, not the default rules (those
are checked at the end against the closed-form rules)."""
import pytest

import memsim
from memsim.bounds import (attention_traffic, flash1_block_sizes, gemm_traffic,
                           square_tiling_block, sram_elements)
from memsim.dtypes import dtype_bytes

ATTENTION_SCHEDULES = ("standard", "flash1", "flash2", "square_tiling", "chunked")

# (batch, heads, kv_heads, seq_q, seq_k, head_dim, mask, dtype)
SHAPES = [
    (1, 1, 1, 1, 1, 64, {}, "bf16"),
    (2, 4, 2, 100, 100, 32, {}, "bf16"),                                  # GQA
    (1, 2, 2, 1000, 1000, 64, {"causal": True}, "fp16"),
    (1, 4, 1, 777, 1500, 128, {"window": 200}, "bf16"),                   # MQA, neighbourhood
    (1, 1, 1, 1025, 1025, 256, {"causal": True, "window": 300}, "bf16"),
    (1, 2, 2, 513, 700, 64, {"block_sparse": {"density": 0.3, "block": 64, "seed": 5}}, "fp8"),
    (1, 2, 1, 300, 300, 32, {"causal": True,
                             "block_sparse": {"density": 0.5, "block": 48, "seed": 1}}, "fp32"),
    (1, 1, 1, 4097, 4097, 64, {}, "bf16"),
    (1, 1, 1, 16384, 16384, 128, {"causal": True}, "bf16"),
]
# explicit block sizes that do not divide the sequence lengths (None: the schedule's defaults)
BLOCKS = {"standard": {"block_q": 96, "block_k": 80}, "flash1": {"block_q": 48, "block_k": 72},
          "flash2": {"block_q": 80, "block_k": 48}, "square_tiling": {"block": 40},
          "chunked": {"block_q": 50, "block_k": 60}}


def attention_config(shape, schedule):
    batch, heads, kv_heads, nq, nk, d, mask, dtype = shape
    return {"hardware": "h100-sxm",
            "workload": {"kind": "attention", "batch": batch, "heads": heads,
                         "kv_heads": kv_heads, "seq_q": nq, "seq_k": nk, "head_dim": d,
                         "dtype": dtype, **mask},
            "schedule": schedule,
            "simulation": {"granularity": "tile" if nq * nk <= 2_000_000 else "block"}}


def closed_form(result):
    wl, s = result.workload, result.schedule
    inter = s.get("intermediate_dtype")
    return attention_traffic(
        s["kind"], seq_q=wl["seq_q"], seq_k=wl["seq_k"], head_dim=wl["head_dim"],
        dtype_bytes=dtype_bytes(wl["dtype"]), batch=wl["batch"], heads=wl["heads"],
        kv_heads=wl["kv_heads"], block_q=s.get("block_q"), block_k=s.get("block_k"),
        causal=wl["causal"], window=wl["window"], sparse=wl["block_sparse"],
        intermediate_bytes=dtype_bytes(inter) if inter else None, splits=s.get("splits"),
        block=s.get("block"))


def check_against_closed_form(result):
    cf = closed_form(result)
    l2 = result.levels["l2"]
    assert (l2.read_bytes, l2.write_bytes) == (cf.read_bytes, cf.write_bytes)
    assert result.flops == cf.flops
    assert result.flops_by_class.get("exp_sfu", 0) == cf.exps


def ids(shape):
    b, h, kv, nq, nk, d, mask, dtype = shape
    return f"b{b}h{h}kv{kv}-{nq}x{nk}-d{d}-{'-'.join(mask) or 'dense'}-{dtype}"


CASES = [pytest.param(shape, schedule, explicit,
                      id=f"{ids(shape)}-{schedule}-{'odd' if explicit else 'default'}-blocks")
         for shape in SHAPES for schedule in ATTENTION_SCHEDULES for explicit in (False, True)
         # the 16K standard case (4 GiB of S and P) runs once, with explicit blocks
         if not (schedule == "standard" and shape[3] * shape[4] > 2_000_000 and not explicit)]


@pytest.mark.parametrize("shape, schedule, explicit", CASES)
def test_attention_matches_closed_form(shape, schedule, explicit, request):
    sched = {"kind": schedule, **(BLOCKS[schedule] if explicit else {})}
    if schedule == "standard":
        sched["intermediate_dtype"] = "fp32"      # PyTorch's math path
    check_against_closed_form(memsim.simulate(attention_config(shape, sched)))


@pytest.mark.parametrize("nq, nk, d, kv_heads, splits, mask", [
    (1, 1, 64, 8, None, {}),
    (1, 32768, 128, 8, None, {"causal": True}),
    (1, 5000, 64, 2, 7, {}),
    (4, 3001, 128, 1, None, {"causal": True}),
    (16, 2047, 256, 4, 3, {"window": 1000, "causal": True}),
])
def test_flash_decoding_matches_closed_form(nq, nk, d, kv_heads, splits, mask):
    shape = (2, 8, kv_heads, nq, nk, d, mask, "bf16")
    sched = {"kind": "flash_decoding"}
    if splits:                         # explicit block_k where splits are given, default otherwise
        sched["block_k"] = 16384 // d  # 2 stages of K and V: 128 KiB
    if splits:
        sched["splits"] = splits
    result = memsim.simulate(attention_config(shape, sched))
    check_against_closed_form(result)
    if splits is None:   # the heuristic: smallest s with batch*heads*s >= SMs, capped at Tc
        tc = -(-nk // result.schedule["block_k"])
        assert result.schedule["splits"] == min(tc, max(1, -(-132 // 16)))


@pytest.mark.parametrize("m, n, k, tiles", [
    (1, 1, 1, {}), (1000, 999, 1001, {}), (4096, 4096, 4096, {}),
    (777, 1234, 300, {"tile_m": 96, "tile_n": 80, "tile_k": 40}),
])
def test_gemm_matches_closed_form(m, n, k, tiles):
    result = memsim.simulate({"hardware": "h100-sxm",
                              "workload": {"kind": "gemm", "m": m, "n": n, "k": k},
                              "schedule": {"kind": "gemm_tiled", **tiles}})
    s = result.schedule
    cf = gemm_traffic(m, n, k, 2, s["tile_m"], s["tile_n"], s["tile_k"])
    l2 = result.levels["l2"]
    assert (l2.read_bytes, l2.write_bytes) == (cf.read_bytes, cf.write_bytes)
    assert result.flops == cf.flops == 2 * m * n * k


def test_default_rules_match_the_closed_form_rules():
    """flash1 takes the paper's block sizes from M, square_tiling B = floor(sqrt(M/4)), where
    M is the per-block SRAM in elements (when those blocks fit)."""
    shape = (1, 2, 2, 1000, 1000, 64, {}, "bf16")
    m = sram_elements(227 * 1024, 2)
    f1 = memsim.simulate(attention_config(shape, {"kind": "flash1"})).schedule
    assert (f1["block_q"], f1["block_k"]) == flash1_block_sizes(m, 64)
    sq = memsim.simulate(attention_config(shape, {"kind": "square_tiling"})).schedule
    assert sq["block"] == square_tiling_block(m)
