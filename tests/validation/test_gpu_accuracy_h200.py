"""memsim against a second GPU that nothing was fitted to: the committed H200 measurements.

Every H200 case is held out. The ``h200`` preset holds only the H200's ceilings (device copies,
GEMMs, pointer chase: ``data/h200/ceilings.json``) and its L2 probes; the per-SM rates no
ceiling run measured (mma.sync, FFMA) and the PCIe link are the ``h100-sxm`` values, and the
kernel mappings are the H100's unchanged. The issue-5 targets are checked per family as for
the H100; misses are strict xfails carrying the figure measured when the data was committed
(docs/validation.md), so that a fix shows up as XPASS and a regression fails, and may not drift
more than a point past that figure (test_h200_misses_do_not_get_worse).
"""
from __future__ import annotations

import math

import pytest

from memsim.hardware import load_hardware
from memsim.validation.calibrate import l2_from_probes
from memsim.validation.compare import TARGETS, compare_cases, load_split, speedups, summarize
from memsim.validation.data import load_gpu_cases
from memsim.validation.mapping import DEVICES

from gpu_targets import Miss, check, check_no_worse, miss_params, params

FAMILIES = ("copy_d2d", "copy_pcie", "decode_cudnn", "decode_efficient", "decode_flash",
            "decode_math", "gemm", "gemm_skinny", "prefill_cudnn", "prefill_efficient",
            "prefill_flash", "prefill_math")

# (family, target) -> the figure measured on the H200 (all cases held out), and why it misses.
MISSES = {
    ("decode_efficient", "time_mape"): Miss(0.408, "cutlass decode takes the same time on the "
                                            "H200 as on the H100 (speedup 0.99x): SM-bound, "
                                            "not the memory-bound kernel memsim predicts "
                                            "(1.35x)"),
    ("decode_efficient", "time_median"): Miss(0.360, "see time_mape"),
    ("gemm", "hbm_per_case"): Miss(0.429, "m1024^3: its kernel writes 3.1 MB for a 2.1 MB C, "
                                   "-45% on the H100 too; m16384^3 -19%, 4096^3 -20% with the "
                                   "H100-calibrated swizzle 8; 151.8% with none"),
    ("prefill_efficient", "time_mape"): Miss(0.510, "cutlass fmha issue-bound (as on the "
                                             "H100)"),
    ("prefill_efficient", "time_median"): Miss(0.484, "see time_mape"),
    ("prefill_flash", "hbm_per_case"): Miss(0.232, "causal n=8192 d=128 (H100: 42.4%): causal "
                                            "FA2 re-reads K/V from HBM"),
}


@pytest.fixture(scope="module")
def ds():
    return load_gpu_cases("h200")


@pytest.fixture(scope="module")
def results(ds):
    split = load_split("h200")
    return compare_cases(ds, ids=split["held_out"], held_out=split["held_out"])


@pytest.mark.parametrize("family,target", params(FAMILIES, MISSES))
def test_h200_accuracy(results, family, target):
    check(results, family, target)


@pytest.mark.parametrize("family,target,figure", miss_params(MISSES))
def test_h200_misses_do_not_get_worse(results, family, target, figure):
    check_no_worse(results, family, target, figure)


def test_h200_overall_time_within_target(results):
    # all 198 predicted cases together (measured 13.4% MAPE, 7.3% median)
    s = summarize(results)[-1]
    assert s.family == "all" and s.n == len(results) >= 190
    assert s.time_mape <= TARGETS["time_mape"] and s.time_median <= TARGETS["time_median"]


def test_every_h200_case_is_held_out(ds):
    split = load_split("h200")
    assert split["calibration"] == []
    assert split["held_out"] == [c.id for c in ds.cases]


def test_h200_preset_holds_its_probes_and_names_what_it_carries_over():
    """reuse capacity and flush-dirty bytes are what calibrate computes from the H200's own L2
    probes; the rates no H200 ceiling measured are the h100-sxm values, marked as such."""
    h200, h100 = load_hardware("h200"), load_hardware("h100-sxm")
    for dev, hw in (("h200", h200), ("h100", h100)):
        got = l2_from_probes(dev)
        assert math.isclose(hw.memory("l2").lru_capacity_bytes, got["l2_reuse_capacity"][0],
                            rel_tol=0.005), dev
        assert math.isclose(DEVICES[dev].l2_dirty_after_flush, got["l2_dirty_measured"][0],
                            rel_tol=0.005), dev
        assert hw.name == DEVICES[dev].preset
    for name in ("bf16_mma", "fp32_fma"):
        r200, r100 = h200.find_rate(name)[1], h100.find_rate(name)[1]
        assert r200.achievable == r100.achievable
        assert "carried over from h100-sxm" in r200.achievable_source
    l200, l100 = h200.link_between("host", "hbm"), h100.link_between("host", "hbm")
    assert l200.bandwidth("host", "hbm") == l100.bandwidth("host", "hbm")
    assert l200.overhead_s == l100.overhead_s
    assert "carried over from h100-sxm" in l200.achievable_source


@pytest.mark.slow
def test_h100_to_h200_speedup(results):
    """memsim predicts how much faster each kernel runs on the H200 than on the H100 (each on
    its own preset). Measured: median error of the predicted speedup 3.3% over 197 cases; the
    exception is cutlass decode (0.99x measured, 1.35x predicted: SM-bound, see MISSES)."""
    h100 = compare_cases(load_gpu_cases("h100"), ids={r.case_id for r in results})
    rows, summ = speedups(h100, results)
    fam = {s.family: s for s in summ}
    assert fam["all"].n == len(rows) >= 190
    assert fam["all"].err_median <= 0.05
    # the memory-bound families speed up with the H200's HBM (4.16 vs 2.98 TB/s) ...
    for f in ("copy_d2d", "decode_cudnn", "gemm_skinny"):
        assert 1.25 <= fam[f].measured_median <= 1.45 and fam[f].err_median <= 0.05, fam[f]
    # ... the compute-bound ones do not, in the data and in memsim
    for f in ("gemm", "prefill_flash", "prefill_cudnn", "prefill_efficient"):
        assert 0.95 <= fam[f].measured_median <= 1.05 and fam[f].err_median <= 0.05, fam[f]
    assert fam["decode_efficient"].err_median > 0.25     # the known miss, documented
