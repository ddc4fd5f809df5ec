"""Held-out accuracy of memsim against the committed H100 measurements (issue 5).

Targets on held-out cases (memsim.validation.compare.TARGETS): kernel time MAPE <= 15% and
median <= 10% per family; HBM bytes read + written <= 10% and L2 read bytes <= 15% per case.
Families that miss a target are recorded as strict xfails with the figure measured when the
calibration was made (docs/validation.md), so that a fix shows up as XPASS and a regression of
a passing family fails; a missing family may not drift more than a point past its recorded
figure either (test_held_out_misses_do_not_get_worse).
"""
from __future__ import annotations

import math

import pytest

from memsim.hardware import load_hardware
from memsim.validation.compare import (TARGETS, compare_cases, is_held_out_by_hash, load_split,
                                       summarize)
from memsim.validation.data import load_gpu_cases
from memsim.validation.mapping import map_case

from gpu_targets import Miss, check, check_no_worse, miss_params, params

FAST_FAMILIES = ("copy_d2d", "copy_pcie", "decode_cudnn", "decode_efficient", "decode_flash",
                 "gemm", "gemm_skinny", "prefill_cudnn", "prefill_efficient", "prefill_flash")
SLOW_FAMILIES = ("prefill_math", "decode_math")

# (family, target) -> the held-out figure measured when the miss was recorded, and why.
MISSES = {
    ("decode_efficient", "time_mape"): Miss(0.184, "b=1 runs 32 blocks (no split-KV) at 2x "
                                            "the modelled time (-50%); the kernel is SM-bound "
                                            "(it takes the same time on the H200's faster HBM)"),
    ("decode_efficient", "time_median"): Miss(0.112, "the b>=8 cases run at ~2.6 TB/s of K/V, "
                                              "SM-bound (0.99x on the H200); predictions 6-12% "
                                              "fast"),
    ("gemm", "hbm_per_case"): Miss(0.375, "m16384^3 -37%, m8192^3 -12% with the swizzle width "
                                   "8 calibrated on the calibration split (93.3% with none): "
                                   "cuBLAS's swizzle is not in the kernel name and may vary "
                                   "with size"),
    ("prefill_cudnn", "time_mape"): Miss(0.153, "ping-pong warpgroups overlap softmax with "
                                         "wgmma inside one CTA; memsim serializes them within "
                                         "a block"),
    ("prefill_cudnn", "time_median"): Miss(0.160, "see time_mape"),
    ("prefill_efficient", "time_mape"): Miss(0.488, "the cutlass fmha kernel reaches half of "
                                             "FA2's mma.sync throughput; one mma rate cannot "
                                             "fit both"),
    ("prefill_efficient", "time_median"): Miss(0.425, "see time_mape"),
    ("prefill_flash", "hbm_per_case"): Miss(0.424, "causal FA2 re-reads K/V from HBM "
                                            "(measured 2x compulsory reads at n=8192); "
                                            "memsim's L2 keeps them"),
}


@pytest.fixture(scope="module")
def ds():
    return load_gpu_cases("h100")


@pytest.fixture(scope="module")
def split():
    return load_split()


@pytest.fixture(scope="module")
def held_fast(ds, split):
    return compare_cases(ds, ids=split["held_out"], held_out=split["held_out"],
                         families=FAST_FAMILIES)


@pytest.mark.parametrize("family,target", params(FAST_FAMILIES, MISSES))
def test_held_out_accuracy(held_fast, family, target):
    check(held_fast, family, target)


@pytest.mark.slow
@pytest.mark.parametrize("family,target", params(SLOW_FAMILIES, MISSES))
def test_held_out_accuracy_math(ds, split, family, target):
    res = compare_cases(ds, ids=split["held_out"], held_out=split["held_out"],
                        families=[family])
    check(res, family, target)


@pytest.mark.parametrize("family,target,figure", miss_params(MISSES))
def test_held_out_misses_do_not_get_worse(held_fast, family, target, figure):
    check_no_worse(held_fast, family, target, figure)


def test_overall_held_out_time_median_within_target(held_fast):
    # all modelled non-math kernels together against the 10% median target (measured 9.7%,
    # MAPE 13.1%, over 83 held-out cases once padded MMA tiles were modelled: compute_rows)
    s = summarize(held_fast)[-1]
    assert s.family == "all" and s.time_median <= TARGETS["time_median"]


def test_split_is_the_committed_hash_rule(ds, split):
    ids = [c.id for c in ds.cases]
    held, cal = set(split["held_out"]), set(split["calibration"])
    assert held.isdisjoint(cal) and held | cal == set(ids)
    assert held == {i for i in ids if is_held_out_by_hash(i)}
    # every predicted family has cases on both sides
    fams = lambda s: {map_case(ds.case(i)).family for i in s if map_case(ds.case(i))}
    assert fams(held) == fams(cal)


def test_preset_holds_the_calibration_of_the_calibration_split():
    """The YAML values are what memsim.validation.calibrate computes from the calibration
    split only (rounded to 3 significant digits in the YAML)."""
    from memsim.validation.calibrate import calibrate
    hw = load_hardware("h100-sxm")
    got = calibrate("h100")
    link = hw.link_between("host", "hbm")
    preset = {"hbm_bandwidth": hw.memory("hbm").read_bandwidth,
              "launch_overhead": hw.gpu.launch_overhead_s,
              "pcie_bandwidth": link.bandwidth("host", "hbm"),
              "pcie_overhead": link.overhead_s,
              "bf16_wgmma": hw.find_rate("bf16_wgmma")[1].achievable,
              "fp16_wgmma": hw.find_rate("fp16_wgmma")[1].achievable,
              "bf16_mma": hw.find_rate("bf16_mma")[1].achievable,
              "fp32_fma": hw.find_rate("fp32_fma")[1].achievable,
              "bf16_mma_peak": hw.find_rate("bf16_mma")[1].peak,
              "fp16_mma_peak": hw.find_rate("fp16_mma")[1].peak}
    held = set(load_split()["held_out"])
    for key, value in preset.items():
        computed, ids = got[key]
        assert math.isclose(value, computed, rel_tol=0.01), (key, value, computed)
        assert not held & set(ids), f"{key} used held-out cases {held & set(ids)}"
    for name in ("bf16_wgmma", "bf16_mma", "fp32_fma"):
        assert "calibration split" in hw.find_rate(name)[1].achievable_source
    assert "gemm_rates.json" in hw.find_rate("fp16_wgmma")[1].achievable_source
    # the fp16 run re-timed bf16 GEMMs of the main run: they agree within 3% (measured 1.4%)
    retime, _ = got["bf16_retime"]
    assert abs(retime - 1) <= 0.03
    # the timing protocol's L2 state, which the mapping simulates (not a preset value): the
    # probe's direct measurement; the calibration split's event-vs-Nsight timing agrees with
    # it within 15% (measured 26.9 vs 24.1 MB: the timing figure also holds other gaps)
    from memsim.validation.mapping import L2_DIRTY_AFTER_FLUSH
    measured, _ = got["l2_dirty_measured"]
    assert math.isclose(L2_DIRTY_AFTER_FLUSH, measured, rel_tol=0.01), (L2_DIRTY_AFTER_FLUSH,
                                                                         measured)
    timed, ids = got["l2_dirty_after_flush"]
    assert abs(timed - measured) <= 0.15 * measured and len(ids) >= 10 and not held & set(ids)
    # the L2's reuse capacity is the probes' half-miss size
    reuse, _ = got["l2_reuse_capacity"]
    assert math.isclose(hw.memory("l2").lru_capacity_bytes, reuse, rel_tol=0.01)
    assert "l2_probes.json" in hw.memory("l2").cache.reuse_source
    # the L2 and HBM latencies are the pointer chase's (161 ns L2-resident, +190 ns to HBM)
    for level, key in (("l2", "l2_latency"), ("hbm", "hbm_latency")):
        value, _ = got[key]
        assert math.isclose(hw.memory(level).latency_s, value, rel_tol=0.01), (level, value)
        assert "latency_probe.json" in hw.memory(level).source


def test_gemm_swizzle_is_calibrated_on_the_calibration_split():
    """The nvjet mappings' swizzle width is the one calibrate picks from calibration GEMMs."""
    from memsim.validation.calibrate import gemm_swizzle
    from memsim.validation.mapping import GEMM_SWIZZLE
    best, ids, score = gemm_swizzle("h100")
    assert best == GEMM_SWIZZLE and len(ids) >= 3
    assert not set(ids) & set(load_split()["held_out"])
    assert score[best] < min(v for k, v in score.items() if k != best)
