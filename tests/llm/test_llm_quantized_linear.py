"""Weight-quantized linear layers of the llm workload run through the engine as mixed-dtype
GEMMs (int4/int8 weights with group scales and zero points, activations in act_dtype)."""
import pytest

from memsim.hardware import load_hardware
from memsim.llm import LlmWorkload, WeightQuant, decode_operators, load_model, run_llm
from memsim.llm.simulate import engine_simulator, gemm_weight_format
from memsim.simulate import simulate

HW = load_hardware("h100-sxm")
M = load_model("llama-3-8b")


def _wl(quant, **kw):
    return LlmWorkload(M, batch=4, prompt_len=256, gen_len=4, weight_dtype="bf16",
                       kv_dtype="bf16", act_dtype="bf16", weight_quant=quant, **kw)


def test_weight_format_mapping():
    assert gemm_weight_format(None) == {}
    assert gemm_weight_format(WeightQuant(4, 128, "fp16", True)) == {
        "b_dtype": "int4", "b_group_size": 128, "b_scale_dtype": "fp16", "b_zero_point": True}
    assert gemm_weight_format(WeightQuant(8, 64, "bf16", False))["b_dtype"] == "int8"
    assert gemm_weight_format(WeightQuant(3, 128)) is None      # no engine dtype: roofline


def test_gemm_hbm_bytes_match_the_operator_weight_bytes():
    """The engine GEMM's compulsory B bytes (weights + scales + zeros) equal the LLM
    operator's roofline weight bytes (bits/8 + (scale + zero)/group per weight)."""
    quant = WeightQuant(4, 128, "fp16", True)
    op = next(o for o in decode_operators(_wl(quant), 300) if o.name == "gate_proj")
    p = op.params
    r = simulate({"hardware": "h100-sxm",
                  "workload": {"kind": "gemm", "m": p["m"], "n": p["n"], "k": p["k"],
                               "dtype": "bf16", **gemm_weight_format(quant)},
                  "schedule": {"kind": "gemm_tiled", "tiling": "library"}})
    a_bytes = p["m"] * p["k"] * 2
    assert op.weight_bytes == p["n"] * p["k"] * quant.bytes_per_weight()
    # HBM reads: every weight byte once (A is tiny and stays in L2)
    assert r.levels["hbm"].read_bytes == pytest.approx(op.weight_bytes + a_bytes, rel=1e-9)


def test_quantized_linears_are_simulated_and_faster_at_decode():
    sim = engine_simulator(HW, "wave", WeightQuant(4, 128))
    plain = engine_simulator(HW, "wave")
    q_ops = {o.name: o for o in decode_operators(_wl(WeightQuant(4, 128)), 300)
             if o.kind == "linear"}
    for name, op in q_ops.items():
        t_q, t_p = sim(op), plain(op)
        assert t_q is not None and t_p is not None
        # memory-bound decode GEMMs: the 4-bit weights read about 3.6x fewer bytes; at
        # least the largest ones must run faster (small ones are latency-bound)
        if op.params["n"] * op.params["k"] >= 4096 * 14336:
            assert t_q < 0.6 * t_p, name


def test_run_llm_simulates_quantized_linears_except_unsupported_bits():
    rep = run_llm(_wl(WeightQuant(4, 128)), HW)
    rows = {r["name"]: r for r in rep.operators() if r["stage"] == "decode"}
    assert rows["q_proj"]["simulated_time_s"] is not None
    assert rows["lm_head"]["simulated_time_s"] is not None
    rep3 = run_llm(_wl(WeightQuant(3, 128)), HW)
    rows3 = {r["name"]: r for r in rep3.operators() if r["stage"] == "decode"}
    assert rows3["q_proj"]["simulated_time_s"] is None          # roofline-costed
    assert rows3["attention"]["simulated_time_s"] is not None
