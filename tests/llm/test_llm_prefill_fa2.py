"""Prefill attention of the LLM path against the measured causal FA2 kernels (H100 and H200,
memsim/validation/data/<device>/gpu_cases.json, SDPA flash backend, batch 4 x 16 heads,
d 64/128, 512-8192 tokens). The LLM path runs FA2's forward kernel (fa2_prefill_schedule:
its tile, mma.sync on the whole query tile, two stages), the mapping of those kernels."""
import dataclasses

import numpy as np
import pytest

from memsim.hardware import load_hardware
from memsim.llm import LlmWorkload, load_model
from memsim.llm.operators import attention_operators
from memsim.llm.simulate import engine_simulator
from memsim.validation.data import load_gpu_cases


@pytest.mark.parametrize("device,preset", [("h100", "h100-sxm"), ("h200", "h200")])
def test_llm_prefill_attention_against_causal_fa2(device, preset):
    ds, hw = load_gpu_cases(device), load_hardware(preset)
    sim = engine_simulator(hw, "block")
    errs = []
    for c in ds.cases:
        p = c.params
        if c.family != "attention_prefill" or p["backend"] != "flash" or not p["causal"]:
            continue
        d = p["head_dim"]
        model = dataclasses.replace(load_model("llama-2-7b"), heads=p["heads"],
                                    kv_heads=p["heads"], head_dim=d, hidden=p["heads"] * d,
                                    max_positions=16384)
        wl = LlmWorkload(model, batch=p["batch"], prompt_len=p["seq_q"], gen_len=1,
                         kv_dtype="bf16", act_dtype="bf16")
        op = attention_operators(wl, "prefill", p["seq_q"], p["seq_q"])[0]
        errs.append(sim(op) / c.time_s - 1)
    errs = np.array(errs)
    assert len(errs) == 10
    # measured: MAPE 10.0% (H100) / 10.9% (H200); d=128 -1..-13%, d=64 -12..-21% (see
    # docs/validation.md: the d=64 FA2 kernels run slower than the rate calibrated at d=128).
    # Before the LLM path ran FA2's kernel (it timed flash2 on wgmma) it was 36-41% fast.
    assert np.abs(errs).mean() <= 0.12, errs
    assert errs.max() < 0.05
