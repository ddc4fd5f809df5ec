"""The LLM simulation runs on every GPU preset: FlashAttention-2's decode tiles (two K+V stages
on the H100) do not fit the shared memory of an RTX 4090 or a T4, where the simulator falls
back to one stage, then to the key block the schedule fits itself (before, these runs failed
with an SRAM error)."""
import pytest

from memsim.simulate import simulate


@pytest.mark.parametrize("hardware", ["h100-sxm", "h200", "a100-80gb", "rtx-4090", "t4"])
@pytest.mark.parametrize("model", ["llama-3-8b", "mistral-7b"])     # GQA; GQA + sliding window
def test_llm_decode_simulates_on_every_gpu_preset(hardware, model):
    r = simulate({"hardware": hardware,
                  "workload": {"kind": "llm", "model": model, "batch": 2, "prompt_len": 512,
                               "gen_len": 4, "weight_dtype": "fp16", "kv_dtype": "fp16",
                               "act_dtype": "fp16"},
                  "simulation": {"granularity": "block"}}).to_dict()
    tot = r["llm"]["totals"]
    sim = tot["simulated"]
    # the simulated step is no faster than its roofline (it adds launches and tile effects)
    assert sim["tpot_first_s"] >= tot["decode"]["tpot_first_s"] > 0
