"""The llm workload with a KV-cache policy: exact KV bytes per decode step, footprint,
simulation, run configuration (Llama-3-8B: 32 layers, 8 KV heads x 128)."""
import json

import numpy as np
import pytest
from click.testing import CliRunner

from memsim.cli import cli
from memsim.config import load_run_config
from memsim.errors import CapacityError, InputError, SpecError
from memsim.hardware import load_hardware
from memsim.llm import LlmWorkload, load_model
from memsim.llm.analysis import analyse, sample_contexts
from memsim.llm.footprint import check_fits, footprint
from memsim.llm.kv_policies import get_policy
from memsim.llm.operators import attention_operators
from memsim.llm.roofline import RooflineMachine
from memsim.llm.simulate import engine_simulator, run_llm

M = load_model("llama-3-8b")
ELEMS = 2 * M.kv_heads * M.head_dim           # K and V elements per token per layer (2048)
B = 4


def wl(policy=None, prompt=1024, gen=64, batch=B, **kw):
    return LlmWorkload(M, batch=batch, prompt_len=prompt, gen_len=gen, kv_policy=policy, **kw)


def attn(w, context):
    (op,) = attention_operators(w, "decode", 1, context)
    return op


def test_streaming_reads_exactly_the_budget_once_the_context_exceeds_it():
    w = wl(get_policy("streaming", budget=512))
    for ctx in (1025, 1060, 1088):
        op = attn(w, ctx)
        assert op.kv_read_bytes == B * 512 * ELEMS * 2          # per layer, fp16
        assert op.kv_write_bytes == 0                           # new token: k/v_proj
        assert op.params["seq_k"] == 512
    # below the budget it reads the whole context, like the full cache
    short = wl(get_policy("streaming", budget=512), prompt=300, gen=64)
    assert attn(short, 301).kv_read_bytes == attn(wl(None, 300), 301).kv_read_bytes \
        == B * 301 * ELEMS * 2


def test_h2o_adds_its_score_metadata():
    op = attn(wl(get_policy("h2o", budget=512)), 1025)
    scores = B * 512 * M.heads * 4                               # fp32 per token and head
    assert op.kv_read_bytes == B * 512 * ELEMS * 2 + scores
    assert op.kv_write_bytes == scores
    assert op.params["extra_bytes"] == 2 * scores


def test_kivi_bytes_follow_the_bits_model():
    w = wl(get_policy("kivi", bits=2, group=32, residual=128))
    q = 2 / 8 + 2 * 2 / 32                                       # 2-bit + fp16 scale, zero
    # context 1025: 1024 quantized tokens + 1 fp16 residual
    assert attn(w, 1025).kv_read_bytes == pytest.approx(B * ELEMS * (1024 * q + 1 * 2))
    assert attn(w, 1025).kv_write_bytes == 0
    # context 1152 = 9 x 128: the residual chunk of 128 tokens is quantized by this step
    op = attn(w, 1152)
    assert op.kv_read_bytes == pytest.approx(B * ELEMS * (1152 * q + 128 * 2))
    assert op.kv_write_bytes == pytest.approx(B * ELEMS * 128 * q)
    assert op.shape == ()                                        # roofline only


def test_relay_reads_the_system_prompt_once_per_batch():
    w = wl(get_policy("relay", system_len=768))
    full = wl(None)
    saved = attn(full, 1030).kv_read_bytes - attn(w, 1030).kv_read_bytes
    assert saved == (B - 1) * 768 * ELEMS * 2
    assert attn(w, 1030).flops == attn(full, 1030).flops        # exact: every key is seen
    with pytest.raises(InputError, match="system_len"):
        wl(get_policy("relay", system_len=2000))


def test_decode_totals_differ_by_the_evicted_tokens():
    machine = RooflineMachine("h100", 3.35e12, 989e12, 67e12)
    w_full, w_stream = wl(None), wl(get_policy("streaming", budget=1040))
    full, stream = analyse(w_full, machine), analyse(w_stream, machine)
    ctx = np.arange(1025, 1025 + 64)
    evicted = np.maximum(ctx - 1040, 0).sum()                    # tokens not read, per seq.
    kv_full = sum(attn(w_full, int(c)).kv_read_bytes for c in ctx)
    kv_stream = sum(attn(w_stream, int(c)).kv_read_bytes for c in ctx)
    assert kv_full - kv_stream == B * evicted * ELEMS * 2
    assert stream.decode_time_s < full.decode_time_s
    assert stream.tokens_per_s > full.tokens_per_s
    # the kink where the budget is reached is one of the simulated contexts
    assert 1040 in sample_contexts(w_stream)


def test_footprint_holds_the_policy_cache():
    kvpt = M.kv_bytes_per_token(2)
    assert footprint(wl(get_policy("streaming", budget=512)), 80e9).kv_cache == B * 512 * kvpt
    assert footprint(wl(None), 80e9).kv_cache == B * (1024 + 64) * kvpt
    assert footprint(wl(get_policy("relay", system_len=1000)), 80e9).kv_cache == \
        (1000 + B * (24 + 64)) * kvpt
    # a 30 GiB device: 16 x 8064 tokens x 128 KiB = 15.75 GiB of KV do not fit next to the
    # 14.96 GiB of weights; a 1024-slot streaming cache (2 GiB) does
    big = dict(prompt=8000, gen=64, batch=16)
    with pytest.raises(CapacityError, match=r"KV cache needs 15\.8 GiB"):
        check_fits(footprint(wl(None, **big), 30 * 2**30))
    fp = footprint(wl(get_policy("streaming", budget=1024), **big), 30 * 2**30)
    check_fits(fp)
    assert fp.kv_cache == 16 * 1024 * kvpt


def test_simulated_decode_with_a_policy():
    hw = load_hardware("h100-sxm")
    base = run_llm(wl(None, gen=16), hw)
    pol = run_llm(wl(get_policy("streaming", budget=256), gen=16), hw)
    assert pol.simulated and base.simulated
    steps = pol.decode_step_sim_s
    assert np.allclose(steps, steps[0], rtol=1e-12)             # every step reads 256 slots
    assert pol.sim_decode_time_s < base.sim_decode_time_s
    kivi = run_llm(wl(get_policy("kivi"), gen=16), hw)          # roofline attention
    assert kivi.simulated and kivi.sim_decode_time_s < base.sim_decode_time_s
    # RelayAttention runs two attention kernels per layer: at batch 4 the extra launch costs
    # more than the shared prompt saves (measured 43.9 vs 20.4 us per layer); at batch 32
    # with an 896-token system prompt it saves a fifth (51.2 vs 63.4 us): FA2's prompt pass
    # computes 128-row tiles for the batch's 32 queries
    sim = engine_simulator(hw)

    def attn_sim(policy, batch):
        return sim(attn(wl(policy, batch=batch), 1025))
    relay = get_policy("relay", system_len=896)
    assert attn_sim(relay, 4) > attn_sim(None, 4)
    assert attn_sim(relay, 32) < 0.85 * attn_sim(None, 32)


BASE = {"hardware": "h100-sxm",
        "workload": {"kind": "llm", "model": "llama-3-8b", "batch": 2, "prompt_len": 512,
                     "gen_len": 4, "kv_policy": {"kind": "h2o", "budget": 128}}}


def test_run_config_and_cli():
    cfg = load_run_config(BASE)
    assert cfg.workload.kv_policy.name == "h2o" and cfg.workload.kv_policy.budget == 128
    with pytest.raises(SpecError, match="kv_policy.*unknown key 'budgt'"):
        load_run_config(BASE, [("workload.kv_policy.budgt", 5)])
    with pytest.raises(SpecError, match="sliding-window"):
        load_run_config(BASE, [("workload.model", "mistral-7b")])
    res = CliRunner().invoke(cli, ["run", "examples/llm_llama3_8b_h2o.yaml", "--format", "json",
                                   "--set", "workload.gen_len=4"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["workload"]["kv_policy"] == {"kind": "h2o", "budget": 512}
    rows = [r for r in out["llm"]["operators"] if r["stage"] == "decode"
            and r["name"] == "attention"]
    assert rows[0]["kv_read_bytes"] == 16 * 512 * (ELEMS * 2 + M.heads * 4)
    bad = CliRunner().invoke(cli, ["run", "examples/llm_llama3_8b_h2o.yaml", "--set",
                                   "workload.kv_policy.kind=lru"])
    assert bad.exit_code == 2 and "lru" in bad.output
