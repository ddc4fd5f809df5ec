"""Roofline parity with LLM-Viewer (papers.md §9): Llama-2-7B, batch 1, seqlen 2048, fp16,
no FlashAttention (``standard`` attention schedule), on LLM-Viewer's own hardware figures."""
import pytest

from memsim.llm import load_model
from memsim.llm.operators import decode_operators, prefill_operators
from memsim.llm.roofline import RooflineMachine, roofline, stage_totals
from memsim.llm.workload import LlmWorkload

# LLM-Viewer hardware_params.py (papers.md §9): bandwidth, FP16 OPS (one peak for every op)
MACHINES = {
    "nvidia_A6000": RooflineMachine("A6000", 768e9, 309.677e12 / 2, 309.677e12 / 2),
    "nvidia_A100_80G": RooflineMachine("A100-80G", 2039e9, 312e12, 312e12),
    "nvidia_H100": RooflineMachine("H100", 3072e9, 1979e12 / 2, 1979e12 / 2),
}
# LLM-Viewer's whole-model roofline times quoted in papers.md §9 (seconds)
PREFILL_S = {"nvidia_A6000": 226.9e-3, "nvidia_A100_80G": 105.9e-3, "nvidia_H100": 40.7e-3}
DECODE_S = {"nvidia_A6000": 18.64e-3, "nvidia_A100_80G": 7.02e-3, "nvidia_H100": 4.66e-3}


@pytest.fixture(scope="module")
def wl():
    return LlmWorkload(load_model("llama-2-7b"), batch=1, prompt_len=2048, gen_len=1,
                       prefill_schedule="standard", decode_schedule="standard")


def by_name(ops):
    return {op.name: op for op in ops}


def test_operator_intensities_match_papers_formulas(wl):
    pre = by_name(prefill_operators(wl))
    # 2·ic·oc·s / (2·(ic·oc + ic·s + oc·s)) = 1024 for 4096 x 4096 at s = 2048
    for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
        assert pre[name].intensity == 1024
        assert pre[name].flops == pytest.approx(68.7e9, rel=1e-3)
        assert pre[name].bytes == pytest.approx(67.1e6, rel=1e-3)
    s, ic, oc = 2048, 4096, 11008
    assert pre["up_proj"].intensity == pytest.approx(ic * oc * s / (ic * oc + ic * s + oc * s))
    assert pre["up_proj"].intensity == pytest.approx(1215, abs=0.5)
    assert pre["softmax"].intensity == 1.25
    assert pre["softmax"].flops == pytest.approx(671e6, rel=1e-3)
    assert pre["qk_matmul"].bytes == pytest.approx(302.0e6, rel=1e-3)
    assert pre["qk_matmul"].intensity == pytest.approx(113.8, abs=0.05)
    assert pre["attn_norm"].intensity == pytest.approx(1.75, rel=1e-3)
    dec = by_name(decode_operators(wl, 2048))
    for name in ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"):
        assert dec[name].intensity == pytest.approx(1.0, abs=1e-3)      # a GEMV: 2 OPs / 2 B
    assert dec["q_proj"].intensity == pytest.approx(0.9995, abs=1e-4)
    assert dec["qk_matmul"].intensity == pytest.approx(0.992, abs=1e-3)
    assert dec["softmax"].intensity == 1.25


@pytest.mark.parametrize("hw", sorted(MACHINES))
def test_roofline_totals_within_5_percent_of_llm_viewer(wl, hw):
    pre = stage_totals(roofline(prefill_operators(wl), MACHINES[hw]))
    dec = stage_totals(roofline(decode_operators(wl, 2048), MACHINES[hw]))
    assert pre["time_s"] == pytest.approx(PREFILL_S[hw], rel=0.05)
    assert dec["time_s"] == pytest.approx(DECODE_S[hw], rel=0.05)
    # measured: +1.8..3.1% prefill (see test below for why), decode equal to 4 digits
    assert dec["time_s"] == pytest.approx(DECODE_S[hw], rel=0.002)


def test_totals_and_the_documented_differences(wl):
    pre = stage_totals(roofline(prefill_operators(wl), MACHINES["nvidia_A6000"]))
    dec = stage_totals(roofline(decode_operators(wl, 2048), MACHINES["nvidia_A6000"]))
    assert pre["flops"] == pytest.approx(2.875e13, rel=1e-3)
    # LLM-Viewer sizes mlp_act with the hidden size (4096) instead of the FFN width (11008) and
    # moves two tensors per residual add instead of three; with those undone the bytes agree.
    b, s, h, f, layers = 1, 2048, 4096, 11008, 32
    mlp_act = layers * 3 * b * s * (f - h) * 2
    adds = layers * 2 * b * s * h * 2
    # nor has it a rotary operator: q and k (32 + 32 heads of 128) read and written, plus the
    # cos/sin rows of the 2048 positions
    rotary = layers * (2 * b * s * 64 * 128 * 2 + 2 * s * 128 * 2)
    assert by_name(prefill_operators(wl))["rotary"].bytes * layers == rotary
    assert pre["bytes"] - mlp_act - adds - rotary == pytest.approx(6.59e10, rel=2e-3)
    # decode: LLM-Viewer counts the LM head as b·h·vocab OPs; we count 2·b·h·vocab
    assert dec["flops"] - 4096 * 32000 == pytest.approx(1.417e10, rel=1e-3)
    assert dec["bytes"] == pytest.approx(1.431e10, rel=1e-3)


def test_decode_is_memory_bound_and_weights_dominate(wl):
    for machine in MACHINES.values():
        costs = roofline(decode_operators(wl, 2048), machine)
        assert all(c.bound == "memory" for c in costs)
    t = stage_totals(roofline(decode_operators(wl, 2048), MACHINES["nvidia_H100"]))
    # weights read once per step: 6.74e9 params x 2 B (embedding: only one row is read)
    m = wl.model
    assert t["weight_bytes"] == pytest.approx(2 * (m.params() - m.vocab * m.hidden
                                                   + m.hidden), rel=1e-9)


def test_fused_attention_moves_no_score_matrix(wl):
    fused = LlmWorkload(wl.model, 1, 2048, 1, prefill_schedule="flash2")
    std = by_name(prefill_operators(wl))
    att = by_name(prefill_operators(fused))["attention"]
    # Q, K, V read once, O written once; causal: 4·d per visible pair
    assert att.bytes == 4 * 2048 * 4096 * 2
    assert att.flops == 4 * 128 * 32 * 2048 * 2049 // 2
    assert std["qk_matmul"].flops + std["sv_matmul"].flops > 1.99 * att.flops


def test_relations_dtype_quant_gqa_window():
    m = load_model("llama-2-7b")
    fp16 = stage_totals(roofline(decode_operators(LlmWorkload(m, 1, 512, 1), 513),
                                 MACHINES["nvidia_H100"]))
    fp8 = stage_totals(roofline(decode_operators(
        LlmWorkload(m, 1, 512, 1, weight_dtype="fp8", kv_dtype="fp8", act_dtype="fp8"), 513),
        MACHINES["nvidia_H100"]))
    assert fp8["bytes"] == pytest.approx(fp16["bytes"] / 2)
    mistral = load_model("mistral-7b")
    wl = LlmWorkload(mistral, 1, 8000, 1)
    short = by_name(decode_operators(wl, 4096))["attention"]
    long = by_name(decode_operators(wl, 8001))["attention"]
    assert long.kv_read_bytes == short.kv_read_bytes == 2 * 4096 * 1024 * 2   # window 4096
    assert long.flops == short.flops
