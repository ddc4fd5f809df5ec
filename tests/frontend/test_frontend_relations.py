"""Relations the simulator must satisfy (issue 3, *Checked by*): every schedule moves at least
the I/O lower bound, flash1/flash2 traffic falls as the SRAM grows, square_tiling beats the
flash schedules when M < d², and the GPT-2-medium standard-vs-flash comparison on a100-80gb
has the closed forms' traffic ratio and names the binding resource."""
from fractions import Fraction

import pytest

import memsim
from memsim.bounds import attention_traffic
from memsim.dtypes import dtype_bytes

SRAM_SIZES = ("16 KiB", "32 KiB", "64 KiB", "128 KiB", "227 KiB")


def config(schedule, *, d=64, n=2048, sram=None, hardware="h100-sxm", **workload):
    wl = {"kind": "attention", "batch": 1, "heads": 2, "seq_q": n, "seq_k": n, "head_dim": d}
    wl.update(workload)
    # bytes do not depend on the granularity (tests/frontend/test_differential.py uses tile)
    cfg = {"hardware": hardware, "workload": wl, "schedule": schedule,
           "simulation": {"granularity": "block"}}
    if sram:
        cfg["hardware_overrides"] = {"memories.sram.capacity": sram,
                                     "memories.sram.max_per_block": sram}
    return cfg


def sram_boundary_bytes(result):
    l2 = result.levels["l2"]
    return l2.read_bytes + l2.write_bytes


@pytest.mark.parametrize("schedule", [
    {"kind": "standard"}, {"kind": "standard", "intermediate_dtype": "fp32"}, {"kind": "flash1"},
    {"kind": "flash2"}, {"kind": "square_tiling"}, {"kind": "chunked"},
    {"kind": "flash2", "block_q": 16, "block_k": 16, "stages": 1},
])
@pytest.mark.parametrize("workload", [
    {}, {"causal": True, "n": 1000, "d": 128}, {"window": 128, "kv_heads": 1},
    {"block_sparse": {"density": 0.2, "block": 64}}, {"sram": "32 KiB", "d": 256, "n": 700},
], ids=["dense", "causal", "window-mqa", "sparse", "small-sram-d256"])
def test_every_schedule_moves_at_least_the_lower_bound(schedule, workload):
    kw = dict(workload)
    result = memsim.simulate(config(schedule, **kw))
    lb = result.lower_bound
    assert lb.level == "l2" and lb.io_bytes > 0
    assert sram_boundary_bytes(result) >= lb.io_bytes
    assert lb.ratio == pytest.approx(sram_boundary_bytes(result) / lb.io_bytes) and lb.ratio >= 1


@pytest.mark.parametrize("schedule", [{"kind": "flash1"}, {"kind": "flash2", "stages": 1}])
def test_flash_traffic_falls_as_sram_grows(schedule):
    moved = [sram_boundary_bytes(memsim.simulate(config(schedule, sram=s))) for s in SRAM_SIZES]
    assert all(a >= b for a, b in zip(moved, moved[1:])), moved
    assert moved[-1] * 3 < moved[0], moved     # 14x more SRAM: at least 3x less traffic


@pytest.mark.parametrize("sram", ["16 KiB", "32 KiB", "64 KiB"])
def test_square_tiling_beats_flash_when_m_below_d_squared(sram):
    d = 256                                   # d² = 65,536 elements = 128 KiB of bf16 > sram
    square = sram_boundary_bytes(memsim.simulate(config({"kind": "square_tiling"}, d=d, n=1024,
                                                        sram=sram)))
    for kind in ("flash1", "flash2"):
        flash = sram_boundary_bytes(memsim.simulate(config({"kind": kind}, d=d, n=1024,
                                                           sram=sram)))
        assert square < flash, (kind, square, flash)


def test_gpt2_medium_standard_vs_flash_on_a100():
    """examples/gpt2-medium-*-a100.yaml: N = 1024, d = 64, 16 heads, batch 64, fp16."""
    block = [("simulation.granularity", "block")]
    std = memsim.simulate("examples/gpt2-medium-standard-a100.yaml", block)
    fa = memsim.simulate("examples/gpt2-medium-flash-a100.yaml", block)
    assert std.workload == fa.workload and std.workload["batch"] == 64

    def closed(result):
        s, w = result.schedule, result.workload
        return attention_traffic(s["kind"], seq_q=1024, seq_k=1024, head_dim=64,
                                 dtype_bytes=dtype_bytes(w["dtype"]), batch=64, heads=16,
                                 block_q=s["block_q"], block_k=s["block_k"]).total_bytes

    assert Fraction(sram_boundary_bytes(std), sram_boundary_bytes(fa)) == \
        Fraction(closed(std), closed(fa))
    assert sram_boundary_bytes(std) > 5 * sram_boundary_bytes(fa)
    # HBM sees the same order: standard round-trips S and P through HBM, flash does not
    assert std.levels["hbm"].read_bytes + std.levels["hbm"].write_bytes > \
        5 * (fa.levels["hbm"].read_bytes + fa.levels["hbm"].write_bytes)
    # the report names the binding resource: standard is memory-bound, flash compute-bound
    assert std.roofline.bound == "hbm" and fa.roofline.bound == "compute"
    assert fa.roofline.resource == "fp16_mma"
    assert "bound by hbm" in std.to_table() and "bound by compute (fp16_mma)" in fa.to_table()
