"""Granularities side by side: ``block`` (the tile model as a numba step simulation) against
the ``tile`` reference (simpy) for every schedule on several shapes, and ``wave`` (one event per
thread block, approximate) within its measured error."""
import pytest

from memsim.engine import _classes, occupancy, simulate_program
from memsim.engine.stepsim import run_step
from memsim.engine.trafficpass import pack, run_pass
from memsim.hardware import load_hardware
from memsim.schedulers import get_schedule
from memsim.workloads import AttentionWorkload, GemmWorkload

HW = load_hardware("h100-sxm")


def attn(b=1, h=8, kvh=None, n=1024, d=64, causal=False, nq=None, window=None):
    return AttentionWorkload(b, h, kvh or h, nq or n, n, d, causal, window, None, "bf16")


# (kind, workload, options): non-divisible sizes, causal, GQA/MQA, windows, stages, decode
CASES = [
    ("flash2", attn(b=2, h=16, n=2048, d=128), {}),
    ("flash2", attn(b=2, h=16, kvh=4, n=2048, causal=True), {}),
    ("flash2", attn(h=3, n=700), {}),
    ("flash2", attn(b=4, h=16, n=1024, d=128, causal=True, window=256), {}),
    ("flash2", attn(h=12, kvh=1, n=1500, d=256), {"stages": 3}),
    ("flash1", attn(b=2, h=16, n=2048), {}),
    ("flash1", attn(h=8, n=1000, d=128), {}),
    ("flash1", attn(h=6, kvh=2, n=1024, causal=True), {}),
    ("standard", attn(n=1024), {}),
    ("standard", attn(h=4, n=2048, d=128), {}),
    ("standard", attn(h=6, n=777, causal=True), {"intermediate_dtype": "fp32"}),
    ("square_tiling", attn(h=4, n=1024), {}),
    ("square_tiling", attn(h=16, n=512, d=128), {}),
    ("square_tiling", attn(h=2, n=600, d=32, causal=True), {}),
    ("chunked", attn(h=8, n=2048), {}),
    ("chunked", attn(h=4, kvh=2, n=3000, d=128, causal=True), {}),
    ("flash_decoding", attn(b=8, h=16, kvh=2, nq=1, n=16384, d=128), {}),
    ("flash_decoding", attn(h=32, kvh=8, nq=1, n=32768, d=128), {}),
    ("flash_decoding", attn(b=4, h=8, nq=4, n=8192, causal=True), {"splits": 7}),
    ("gemm_tiled", GemmWorkload(2048, 2048, 2048, "bf16"), {}),
    ("gemm_tiled", GemmWorkload(1000, 3000, 500, "bf16"), {}),
    ("gemm_tiled", GemmWorkload(16, 8192, 8192, "bf16"), {}),
    ("gemm_tiled", GemmWorkload(4096, 4096, 4096, "bf16"), {"stages": 1}),
]


def _id(case):
    kind, w, opts = case
    shape = (f"{w.m}x{w.n}x{w.k}" if isinstance(w, GemmWorkload) else
             f"b{w.batch}h{w.heads}kv{w.kv_heads}q{w.seq_q}k{w.seq_k}d{w.head_dim}"
             f"{'c' if w.causal else ''}{f'w{w.window}' if w.window else ''}")
    return f"{kind}-{shape}{'-' + '-'.join(f'{k}{v}' for k, v in opts.items()) if opts else ''}"


@pytest.fixture(scope="module")
def results():
    """tile, block and wave results of every case (the tile runs dominate: ~2 s)."""
    out = {}
    for case in CASES:
        kind, w, opts = case
        ks = get_schedule(kind).from_dict(opts, w, HW).kernels()
        out[_id(case)] = {g: simulate_program(HW, ks, granularity=g)
                          for g in ("tile", "block", "wave")}
    return out


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_block_mode_matches_tile_level(case, results):
    r = results[_id(case)]
    tile, block = r["tile"], r["block"]
    assert block.levels == tile.levels and block.tensors == tile.tensors
    assert block.flops_by_class == tile.flops_by_class
    # the target (item 7): time within 2 %
    assert block.time_s == pytest.approx(tile.time_s, rel=0.02)
    # what is measured: the same model over the same floats gives the same kernel times
    # (bit-identical in every case here; 1e-9 leaves room for a different libm only)
    for kb, kt in zip(block.kernels, tile.kernels):
        assert (kb.name, kb.grid, kb.blocks_per_sm) == (kt.name, kt.grid, kt.blocks_per_sm)
        assert kb.start_s == pytest.approx(kt.start_s, rel=1e-9)
        assert kb.end_s == pytest.approx(kt.end_s, rel=1e-9)
    assert block.events == tile.events
    assert block.busy_s == pytest.approx(tile.busy_s, rel=1e-9)


# measured max |wave - tile| / tile per schedule over CASES (benchmarks/engine_bench.py),
# rounded up by 0.5-1 %: the wave mode is the fast approximate mode, documented with these
# errors (worst, with the measured h100-sxm latencies: gemm_tiled with stages=1 +58.1 %,
# flash_decoding on GQA decode +44.9 %)
WAVE_ERROR = {"flash2": 0.07, "flash1": 0.06, "chunked": 0.025, "gemm_tiled": 0.59,
              "standard": 0.10, "square_tiling": 0.11, "flash_decoding": 0.455}


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_wave_mode_same_bytes_time_within_measured_error(case, results):
    r = results[_id(case)]
    tile, wave = r["tile"], r["wave"]
    assert wave.levels == tile.levels and wave.tensors == tile.tensors
    assert wave.time_s == pytest.approx(tile.time_s, rel=WAVE_ERROR[case[0]])
    assert wave.events == sum(k.grid for k in wave.kernels)     # one event per block


def test_heap_queue_gives_the_same_order_as_the_sorted_ring():
    # Force the binary heap from the start (max_moves < 0) and compare with the default
    # (sorted ring): both pop events in (time, scheduling order), so the times are equal.
    for kind, w in (("flash_decoding", attn(b=4, h=8, nq=4, n=8192, causal=True)),
                    ("standard", attn(h=6, n=777, causal=True))):
        ks = get_schedule(kind).from_dict({}, w, HW).kernels()
        p = pack(ks)
        units, cu, cr = _classes(HW, p.classes)
        slots = [occupancy(HW, k) * HW.gpu.sms for k in ks]
        pr = run_pass(p, slots, cu, cr, ks[0].program.n_regions,
                      len(ks[0].program.tensor_names), len(units),
                      HW.memory("l2").lru_capacity_bytes, False, sparse=True)
        ring = run_step(HW, ks, p, pr, units, cu, cr)
        heap = run_step(HW, ks, p, pr, units, cu, cr, max_moves=-1)
        assert ring[0] == heap[0] and ring[1] == heap[1] and ring[3] == heap[3]
        tile = simulate_program(HW, ks, granularity="tile")
        assert heap[0] == pytest.approx(tile.time_s, rel=1e-9)


def test_sparse_hbm_steps_overflow_reruns_the_pass():
    # the sparse list of steps with HBM traffic starts at 2 x regions + 4096 entries; a
    # program that misses more often (GEMM tiles streamed through a tiny L2) must still give
    # every step: compare its sums with the pass's totals
    ks = get_schedule("gemm_tiled").from_dict({}, GemmWorkload(2048, 2048, 2048), HW).kernels()
    p = pack(ks)
    units, cu, cr = _classes(HW, p.classes)
    slots = [occupancy(HW, k) * HW.gpu.sms for k in ks]
    prog = ks[0].program
    pr = run_pass(p, slots, cu, cr, prog.n_regions, len(prog.tensor_names), len(units),
                  64 * 1024, False, sparse=True)    # a 64 KiB L2: nearly every step misses
    assert len(pr.sp_g) > 2 * prog.n_regions + 4096
    assert pr.sp_hbm.sum() == pr.tensor_hbm_read.sum()
    assert pr.sp_wb.sum() + pr.kernel_flush.sum() == pr.tensor_hbm_write.sum()
    assert (pr.sp_g[1:] > pr.sp_g[:-1]).all()           # sorted by step, one entry per step
