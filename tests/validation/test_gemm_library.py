"""gemm_tiled's ``tiling: library`` (the GEMM rule of the LLM path) against cuBLAS on
Llama-3-8B's projection GEMMs at 64-16384 tokens, measured on an H100 and an H200
(gemm_library.json; validation/harness/gemm_library.py). Nothing was fitted to these shapes.
Targets: issue 5's kernel-time targets (MAPE <= 15%, median <= 10%); misses are strict xfails
with their figure."""
from __future__ import annotations

import functools
import statistics

import pytest

from memsim.validation.gemm_library import compare_gemm_library


@functools.lru_cache(maxsize=None)
def _cases(device):
    return compare_gemm_library(device)


@pytest.mark.parametrize("device", ["h100", "h200"])
def test_library_rule_time_mape(device):
    errs = [abs(c.err) for c in _cases(device)]
    assert len(errs) == 36
    assert sum(errs) / len(errs) <= 0.15            # measured 10.4% (H100), 10.9% (H200)
    assert max(errs) <= 0.40                        # measured 29.0%, 37.4% (k_proj m1024)


def test_library_rule_time_median_h100():
    assert statistics.median(abs(c.err) for c in _cases("h100")) <= 0.10    # measured 9.3%


@pytest.mark.xfail(strict=True, reason="10.1%: one-wave mid-size GEMMs (m 512-4096 with "
                   "64x128..128x256 tiles) run their CTAs faster than the wgmma rate "
                   "calibrated on the 4096^3 GEMM (+10..+37%); small-m GEMMs are 15-20% fast")
def test_library_rule_time_median_h200():
    assert statistics.median(abs(c.err) for c in _cases("h200")) <= 0.10


@pytest.mark.parametrize("device,same", [("h100", 23), ("h200", 22)])
def test_library_rule_picks_cublas_tile(device, same):
    """The rule picks cuBLAS's tile in 23 (H100) / 22 (H200) of the 36 shapes; it differs
    where cuBLAS splits K (k_proj and down_proj at m <= 128; down_proj at m = 256 on the H200)
    or picks a 112-176-wide or 192/320 tile."""
    cases = _cases(device)
    assert sum(c.same_tile for c in cases) == same
    assert all(c.cublas_tile is not None for c in cases)
    # from 2048 tokens on, the rule and cuBLAS agree on every q/k/down projection but the
    # largest (cuBLAS's 320-wide tile at 16384 tokens)
    for c in cases:
        if c.m in (2048, 4096, 8192) and not c.id.startswith("gate"):
            assert c.same_tile, c
