"""Roofline and hierarchical roofline (papers.md section 9 and 12 values)."""
import math

import pytest

from memsim.bounds import effective_peak, hierarchical_roofline, roofline
from memsim.errors import InputError


def test_single_level_matches_llm_viewer_rule():
    # LLM-Viewer: attainable = min(peak, AI * BW); A6000: 154.8 TFLOP/s, 768 GB/s.
    peak, bw = 309.677e12 / 2, 768e9
    assert peak / bw == pytest.approx(201.6, abs=0.05)             # ridge point
    # prefill linear 4096x4096 over s = 2048 tokens, fp16: AI = 1024 -> compute-bound
    ops = 2 * 4096 * 4096 * 2048
    nbytes = 2 * (4096 * 4096 + 4096 * 2048 + 4096 * 2048)
    h = hierarchical_roofline(flops=ops, peak_flops_per_s=peak, bytes_by_level={"hbm": nbytes},
                              bandwidths={"hbm": bw})
    assert h.points[0].arithmetic_intensity == 1024
    assert (h.binding, h.attainable_flops_per_s) == ("compute", peak)
    # decode GEMV, batch 1: 2 ops per 2-byte weight (plus tiny activations) -> memory-bound
    ops = 2 * 4096 * 4096
    nbytes = 2 * (4096 * 4096 + 4096 + 4096)
    h = hierarchical_roofline(flops=ops, peak_flops_per_s=peak, bytes_by_level={"hbm": nbytes},
                              bandwidths={"hbm": bw})
    assert h.binding == "hbm"
    assert h.attainable_flops_per_s == pytest.approx(ops / nbytes * bw, rel=1e-12)
    assert h.time_s == pytest.approx(nbytes / bw, rel=1e-12)
    r = roofline(flops={"tensor": ops}, rates={"tensor": peak}, bytes_by_level={"hbm": nbytes},
                 bandwidths={"hbm": bw})
    assert (r.bound, r.resource) == ("memory", "hbm")
    assert r.time_s == pytest.approx(h.time_s, rel=1e-12)        # the two views agree


def test_ridge_points_papers_section_12():
    for peak, bw, ridge in ((312e12, 2039e9, 153.0), (989.4e12, 3.35e12, 295.3),
                            (989.4e12, 4.8e12, 206.1)):
        h = hierarchical_roofline(flops=1.0, peak_flops_per_s=peak,
                                  bytes_by_level={"hbm": 1.0}, bandwidths={"hbm": bw})
        assert h.points[0].ridge_point == pytest.approx(ridge, abs=0.05)


def test_per_class_and_per_level_binding():
    # exps on the SFU can bind a FlashAttention tile even when the tensor cores do not
    r = roofline(flops={"tensor": 4e12, "sfu": 1e11}, rates={"tensor": 1e15, "sfu": 1e13},
                 bytes_by_level={"hbm": 1e9, "l2": 2e10}, bandwidths={"hbm": 3e12, "l2": 1e13})
    assert r.compute_times_s == {"tensor": 4e-3, "sfu": 1e-2}
    assert (r.bound, r.resource, r.time_s) == ("compute", "sfu", 1e-2)
    r = roofline(flops={"tensor": 4e12}, rates={"tensor": 1e15},
                 bytes_by_level={"hbm": 1e9, "l2": 8e10}, bandwidths={"hbm": 3e12, "l2": 1e13})
    assert (r.bound, r.resource, r.time_s) == ("memory", "l2", 8e-3)
    assert effective_peak({"tensor": 4e12, "sfu": 1e11}, {"tensor": 1e15, "sfu": 1e13}) == \
        pytest.approx(4.1e12 / 1e-2)


def test_hierarchical_lowest_roof_binds():
    h = hierarchical_roofline(flops=1e12, peak_flops_per_s=1e15,
                              bytes_by_level={"hbm": 1e9, "l2": 5e9, "sram": 0},
                              bandwidths={"hbm": 3e12, "l2": 1e13, "sram": 3e13})
    by = {p.level: p for p in h.points}
    assert by["hbm"].arithmetic_intensity == 1000 and by["l2"].arithmetic_intensity == 200
    assert by["hbm"].attainable_flops_per_s == 1e15            # above the ridge (333)
    assert by["l2"].ridge_point == 100 and by["l2"].bound == "compute"   # AI 200 > ridge
    assert by["l2"].attainable_flops_per_s == 1e15
    assert math.isinf(by["sram"].arithmetic_intensity)
    assert h.binding == "compute" and h.time_s == 1e-3
    h = hierarchical_roofline(flops=1e12, peak_flops_per_s=1e15,
                              bytes_by_level={"hbm": 1e9, "l2": 2e10},
                              bandwidths={"hbm": 3e12, "l2": 1e13})
    assert h.binding == "l2" and h.attainable_flops_per_s == 50 * 1e13
    assert h.time_s == pytest.approx(2e-3)


def test_errors_name_the_resource():
    with pytest.raises(InputError, match='no rate for instruction class "sfu"'):
        roofline(flops={"sfu": 1.0}, rates={"tensor": 1.0}, bytes_by_level={}, bandwidths={})
    with pytest.raises(InputError, match='no bandwidth for memory level "l2"'):
        roofline(flops={}, rates={}, bytes_by_level={"l2": 1.0}, bandwidths={"hbm": 1.0})
    with pytest.raises(InputError, match='bandwidth "hbm" must be a finite number > 0'):
        hierarchical_roofline(flops=1.0, peak_flops_per_s=1.0, bytes_by_level={"hbm": 1.0},
                              bandwidths={"hbm": 0})


def test_gpt2_medium_on_a100_standard_vs_flash():
    """papers.md 1.5 setting (N=1024, d=64, 16 heads, batch 64), forward, fp16 on a100-80gb:
    standard attention is HBM-bound; FlashAttention moves 1/6 of the bytes and is faster."""
    from memsim.bounds import attention_traffic, hardware_roofline, sram_elements
    from memsim.hardware import load_hardware
    hw = load_hardware("a100-80gb")
    kw = dict(seq_q=1024, seq_k=1024, head_dim=64, dtype_bytes=2, batch=64, heads=16)
    std = attention_traffic("standard", block_q=128, block_k=128, **kw)
    m = sram_elements(hw.memory("sram").capacity_bytes, 2)
    fa = attention_traffic("flash1", sram_elements=m, **kw)
    rs = hardware_roofline(hw, flops={"fp16_mma": std.flops}, bytes_by_level={"hbm": std.total_bytes})
    rf = hardware_roofline(hw, flops={"fp16_mma": fa.flops}, bytes_by_level={"hbm": fa.total_bytes})
    assert (rs.bound, rs.resource) == ("memory", "hbm")
    assert rs.time_s == std.total_bytes / hw.memory("hbm").read_bandwidth
    assert std.total_bytes / fa.total_bytes > 5
    assert rs.time_s / rf.time_s > 2
    assert rf.compute_times_s["fp16_mma"] == fa.flops / hw.find_rate("fp16_mma")[1].effective
