"""Decode attention on h100-sxm (and h200) against the measured decode cases (issue 6, "Checked by";
targets of the GPU-validation issue: time MAPE <= 15% per family, HBM bytes <= 10% per case).

Data: memsim/validation/data/h100/gpu_cases.json, family 'attention_decode' (batch {1,8,32} x
32 heads x d 128 x KV 1K..32K, bf16). None of these cases calibrates the preset (calibration
uses copies, GEMMs, FA2 prefill and math-backend FFMA kernels), so every decode case is
out-of-sample here; the held-out subset is asserted in tests/validation/test_gpu_accuracy.py.

Two checks:
* the LLM path itself: Llama-2-7B's decode attention (32 heads x 128, MHA: the measured shape)
  as ``memsim.llm`` simulates it (flash_decoding with FlashAttention-2's split rule,
  ``fa2_num_splits``) against the flash backend;
* every decode backend through the GPU-validation mapping (memsim.validation.mapping, which
  reads the measured split counts from the kernel grids).
"""
import dataclasses

import numpy as np
import pytest

from memsim.hardware import load_hardware
from memsim.llm import LlmWorkload, load_model
from memsim.llm.operators import attention_operators
from memsim.llm.simulate import engine_simulator, fa2_num_splits
from memsim.validation.compare import TARGETS, compare_cases, summarize
from memsim.validation.data import load_gpu_cases


@pytest.fixture(scope="module")
def ds():
    return load_gpu_cases("h100")


@pytest.fixture(scope="module")
def hw():
    return load_hardware("h100-sxm")


def _flash(ds):
    cases = [c for c in ds.cases if c.family == "attention_decode"
             and c.params["backend"] == "flash"]
    assert len(cases) == 12
    return cases


def _measured_splits(case) -> int:
    k = max(case.kernels, key=lambda k: k.gpu_time_s)
    return k.grid[1] if "splitkv" in k.name else 1


def test_fa2_split_rule_reproduces_the_measured_grids(ds, hw):
    got = {c.id: fa2_num_splits(c.params["batch"] * c.params["heads"], hw.gpu.sms,
                                c.params["head_dim"], c.params["seq_k"]) for c in _flash(ds)}
    want = {c.id: _measured_splits(c) for c in _flash(ds)}
    assert got == want
    assert set(want.values()) == {1, 7, 8}      # the data exercises split and no-split


@pytest.fixture(scope="module", params=[("h100", "h100-sxm"), ("h200", "h200")],
                ids=["h100", "h200"])
def llm_path(request):
    """(case, predicted time, predicted HBM bytes) of the llm decode attention operator, on
    each measured GPU with its preset (the H200: nothing fitted to its data)."""
    device, preset = request.param
    ds, hw = load_gpu_cases(device), load_hardware(preset)
    sim = engine_simulator(hw, "block")
    model = dataclasses.replace(load_model("llama-2-7b"), max_positions=65536)
    out = []
    for c in _flash(ds):
        p = c.params
        assert (p["heads"], p["kv_heads"], p["head_dim"]) == (model.heads, model.kv_heads,
                                                              model.head_dim)
        wl = LlmWorkload(model, batch=p["batch"], prompt_len=p["seq_k"] - 1, gen_len=1,
                         kv_dtype="bf16", act_dtype="bf16")
        op = attention_operators(wl, "decode", 1, p["seq_k"])[0]
        out.append((c, sim(op), op.bytes))
    return out


def test_llm_decode_attention_time_within_target(llm_path):
    # measured: MAPE 7.6% on the H100 (every case 1-15% fast), 7.7% on the H200 (-16..+3%);
    # before the LLM path ran FA2's own tiles (mma.sync on 64 / 128 padded query rows, fa2_
    # decode_schedule) it timed the useful rows only: 14.4% and 31.1%, since from batch 8 on
    # FA2's padded MMAs, not HBM, bound the kernel and the H200's faster HBM does not help
    errs = np.array([(t - c.time_s) / c.time_s for c, t, _ in llm_path])
    assert np.abs(errs).mean() <= 0.10, errs


def test_llm_decode_attention_hbm_bytes_within_target(llm_path):
    # Q, K, V read once, O written once vs dram__bytes_read + write: measured worst -1.2%
    for c, _, nbytes in llm_path:
        assert abs(nbytes - c.hbm_bytes) / c.hbm_bytes <= TARGETS["hbm_per_case"], c.id


@pytest.fixture(scope="module")
def mapped(ds):
    return compare_cases(ds, families=["decode_flash", "decode_cudnn", "decode_efficient"])


EFFICIENT_MISS = ("decode_efficient: time MAPE 24.6% (b=1: 32 CTAs without split-KV run "
                  "2.0-2.2x slower than modelled; per-SM bandwidth is not modelled)")

@pytest.mark.parametrize("family", [
    "decode_flash", "decode_cudnn",
    pytest.param("decode_efficient", marks=pytest.mark.xfail(strict=True,
                                                             reason=EFFICIENT_MISS))])
def test_mapped_decode_time_mape(mapped, family):
    # measured: flash 5.9%, cudnn 3.8%, efficient 24.6%
    s = {x.family: x for x in summarize([r for r in mapped if r.family == family])}[family]
    assert s.n == 12
    assert s.time_mape <= TARGETS["time_mape"], f"{family} {s.time_mape:.1%}"


@pytest.mark.parametrize("family", ["decode_flash", "decode_cudnn", "decode_efficient"])
def test_mapped_decode_hbm_bytes_per_case(mapped, family):
    # measured: flash worst 1.3%, cudnn 1.1%, efficient 0.3% (its b1 k1024 record, 2x
    # compulsory with 16.8 MB of writes, was an artifact: re-profiled 3x, rechecks.json)
    for r in mapped:
        if r.family == family:
            assert abs(r.hbm_err) <= TARGETS["hbm_per_case"], (r.case_id, r.hbm_err)


def test_fa2_decode_runs_a_gqa_group_as_query_rows():
    """With GQA and no sliding window, FA2 runs a K/V head's group of single queries as the
    query rows of one tile (flash_api.cpp, seqlenq_ngroups_swapped): Llama-3-8B's decode
    attention (32 query heads over 8 K/V heads) is simulated as 8 heads x 4 query rows."""
    from memsim.llm.simulate import fa2_decode_schedule
    from memsim.simulate import simulate
    hw = load_hardware("h100-sxm")
    sim = engine_simulator(hw, "block")
    model = load_model("llama-3-8b")
    assert (model.heads, model.kv_heads) == (32, 8)
    wl = LlmWorkload(model, batch=4, prompt_len=4095, gen_len=1, kv_dtype="bf16",
                     act_dtype="bf16")
    op = attention_operators(wl, "decode", 1, 4096)[0]
    rates = {n for u in hw.compute for n in u.rates}

    def direct(heads, seq_q, causal):
        sched = {"kind": "flash_decoding",
                 **fa2_decode_schedule(4 * heads, hw.gpu.sms, 128, 4096, "bf16", rates)}
        return simulate({"hardware": hw.to_dict(), "workload": {
            "kind": "attention", "batch": 4, "heads": heads, "kv_heads": 8, "seq_q": seq_q,
            "seq_k": 4096, "head_dim": 128, "causal": causal, "dtype": "bf16"},
            "schedule": sched, "simulation": {"granularity": "block"}}).time_s
    swapped, per_head = direct(8, 4, False), direct(32, 1, True)
    assert sim(op) == swapped
    # one K/V read per group, a quarter of the padded MMA tiles: faster than per query head
    assert swapped < per_head
