"""memsim's LLM path against whole steps measured on an H100 and an H200 (llm_steps.json):
a Llama-3-8B-shaped decoder, bf16, run as CUDA graphs (validation/harness/llm_step.py).

Nothing here was fitted: memsim predicts from the llama-3-8b preset and each device's hardware
preset. The step targets are issue 5's kernel-time targets applied per stage and
implementation (MAPE <= 15%, median <= 10%); the per-case bounds are the worst errors measured
when the data was committed, rounded up. Misses are strict xfails with their figure.
"""
from __future__ import annotations

import functools
import statistics

import pytest
from click.testing import CliRunner

from memsim.cli import cli
from memsim.hardware import load_hardware
from memsim.llm import LlmWorkload, load_model
from memsim.llm.simulate import run_llm
from memsim.validation.llm_steps import compare_llm_steps, load_llm_steps, llm_step_summary

DEVICES = ("h100", "h200")
GEMMS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


@functools.lru_cache(maxsize=None)
def _compared(device):
    return compare_llm_steps(device)


@pytest.fixture(scope="module", params=DEVICES)
def steps(request):
    return request.param, _compared(request.param)


def _errs(cases, stage, impl):
    errs = [c.eager_err if impl == "eager" else c.compiled_err for c in cases
            if c.stage == stage]
    return [abs(e) for e in errs if e is not None]


# (stage, implementation) -> per-case bound: the worst error measured (H100 / H200), rounded up
CASE_BOUND = {("decode", "eager"): 0.06,        # worst -5.0% / -5.5%
              ("decode", "compiled"): 0.12,     # worst +9.5% / +11.1% (b=1: memsim's 4.77 us
                                                # per fused op is 2-4 of Inductor's kernels)
              ("prefill", "compiled"): 0.08}    # worst -3.9% / -7.6%


@pytest.mark.parametrize("stage,impl", sorted(CASE_BOUND))
def test_steps_within_the_kernel_targets(steps, stage, impl):
    device, cases = steps
    errs = _errs(cases, stage, impl)
    assert errs, f"{device}: no {stage} {impl} steps"
    assert sum(errs) / len(errs) <= 0.15 and statistics.median(errs) <= 0.10
    assert max(errs) <= CASE_BOUND[(stage, impl)], (device, stage, impl, max(errs))


def test_eager_prefill_within_the_mape_target(steps):
    device, cases = steps
    errs = _errs(cases, "prefill", "eager")
    assert sum(errs) / len(errs) <= 0.15          # measured 9.7% (H100), 10.1% (H200)


@pytest.mark.xfail(strict=True, reason="H200 10.7% (H100 9.5%): at 4-16 K tokens eager PyTorch "
                   "runs rotary as 10 elementwise kernels (measured 9% of the b=16 prefill "
                   "step; memsim's fused rotary 1%) and SiLU*up as 2 (memsim: 1)")
def test_eager_prefill_median_on_the_h200():
    errs = _errs(_compared("h200"), "prefill", "eager")
    assert statistics.median(errs) <= 0.10


def test_eager_prefill_gap_is_the_unfused_elementwise_work(steps):
    """Where memsim misses an eager prefill, the measured excess of eager rotary and SiLU*up
    over memsim's fused operators covers at least half of the gap (it is not the GEMMs or
    attention)."""
    device, cases = steps
    for c in cases:
        if c.stage == "prefill" and c.eager_err < -0.10:
            gap = c.eager_s - c.predicted_s
            unfused = sum(c.ops_measured_s[o] - c.ops_predicted_s[o]
                          for o in ("rotary", "mlp_act"))
            assert unfused >= 0.5 * gap, (device, c.id, unfused, gap)


@pytest.mark.parametrize("op,bound", [(g, 0.10) for g in GEMMS] +
                         [("attention", 0.15), ("final_norm+lm_head", 0.10)])
def test_decode_operators(steps, op, bound):
    """memsim's decode GEMMs and attention against the same operator timed alone: MAPE over
    the 7 decode steps (measured: GEMMs 1.2-9.8%, attention 11.8% / 12.1%)."""
    device, cases = steps
    v = llm_step_summary(cases)["ops"][("decode", op)]
    assert v["n"] == 7 and v["mape"] <= bound, (device, op, v)


def test_the_operator_graphs_add_up_to_the_step():
    """The per-operator graphs cover the step: their sum is within 7% of the whole step's
    graph (measured -6.0% to +2.5%: the step also gathers the embedding, and its operators
    find their inputs in L2). Replays of a decode step agree within 2% (measured 0.6-1.7%);
    prefills, which run long enough to lower the clock, within 12% (measured up to 11.9%):
    the figure is the median of 20."""
    for device in DEVICES:
        doc = load_llm_steps(device)
        for c in doc["cases"]:
            assert abs(c["ops_sum_s"] / c["step_s"] - 1) <= 0.07, (device, c["id"])
            reps = c["step_reps_s"]
            spread = 0.02 if c["stage"] == "decode" else 0.12
            assert len(reps) == 20 and max(reps) / min(reps) - 1 <= spread, (device, c["id"])
            assert c["step_s"] == statistics.median(reps)
        assert doc["model"]["layers"] == 32 and doc["model"]["kv_heads"] == 8


def test_provenance_and_kernels():
    import json
    from memsim.validation.data import DATA_DIR
    for device, gpu in (("h100", "H100"), ("h200", "H200")):
        doc = load_llm_steps(device)
        assert gpu in doc["provenance"]["gpu_name"]
        kern = json.loads((DATA_DIR / device / "llm_step_kernels.json").read_text())
        for case in kern["cases"].values():
            per_layer = lambda op: sum(k["per_layer"] for k in case[op])   # noqa: E731
            assert per_layer("rotary") == 10 and per_layer("mlp_act") == 2
            assert per_layer("attn_norm") == 1 and per_layer("kv_write") == 2
        # the compiled decode step fuses rotary into Triton kernels (2 per layer)
        comp = next(c for c in doc["compiled"] if c["id"] == "decode_b16_ctx2048")
        fused = [k for k in comp["kernels"] if k["name"].startswith("triton")
                 and "cat_mul_neg" in k["name"]]
        assert sum(k["per_step"] for k in fused) == 64


def test_memory_kernels_cost_a_launch_plus_their_bytes():
    """Norms, residual adds, the activation, rotary and the embedding are each one kernel:
    the preset's launch overhead plus their bytes at the achievable HBM bandwidth."""
    hw = load_hardware("h100-sxm")
    r = run_llm(LlmWorkload(load_model("llama-3-8b"), batch=16, prompt_len=2048, gen_len=1,
                            weight_dtype="bf16", kv_dtype="bf16", act_dtype="bf16"), hw)
    bw, launch = hw.memory("hbm").read_bandwidth, hw.gpu.launch_overhead_s
    by = {c.op.name: c.op for c in r.decode_first}
    for name in ("attn_norm", "mlp_norm", "attn_add", "mlp_add", "mlp_act", "rotary", "embed",
                 "final_norm"):
        assert r.decode_sim_s[name] == pytest.approx(launch + by[name].bytes / bw, rel=1e-12)


def test_cli(monkeypatch, tmp_path):
    import memsim.validation.llm_steps as mod
    real = mod.compare_llm_steps
    # the committed devices' predictions are cached above (each takes a few seconds)
    monkeypatch.setattr(mod, "compare_llm_steps", lambda device, hardware=None, path=None:
                        _compared(device) if hardware is None and path is None
                        else real(device, hardware, path))
    res = CliRunner().invoke(cli, ["validate-llm", "h100"])
    assert res.exit_code == 0, res.output
    assert "decode_b16_ctx2048" in res.output and "compiled" in res.output
    res = CliRunner().invoke(cli, ["validate-llm", "h200", "--format", "json"])
    assert res.exit_code == 0
    import json
    doc = json.loads(res.output)
    assert len(doc["cases"]) == 11 and {s["implementation"] for s in doc["summary_steps"]} \
        == {"eager", "compiled"}
    png = tmp_path / "steps.png"
    res = CliRunner().invoke(cli, ["validate-llm", "h100", "--plot", str(png)])
    assert res.exit_code == 0 and png.stat().st_size > 10_000 and "wrote" in res.output
    res = CliRunner().invoke(cli, ["validate-llm", "h100", "--plot", str(tmp_path / "x.bmp")])
    assert res.exit_code == 2 and ".png, .pdf or .svg" in res.output
    res = CliRunner().invoke(cli, ["validate-llm", "a100"])
    assert res.exit_code == 2 and "committed for: h100, h200" in res.output


def test_bad_data_is_one_clear_error(tmp_path):
    import json
    good = load_llm_steps("h100")
    cases = [
        ({"schema": "other"}, "expected schema"),
        ({**good, "cases": []}, "non-empty list"),
        ({**good, "cases": [{**good["cases"][0], "stage": "train"}]}, "'stage' must be"),
        ({**good, "cases": [{**good["cases"][0], "batch": "16"}]}, "'batch' must be an integer"),
        ({**good, "cases": [{**good["cases"][0], "step_s": -1.0}]}, "step_s > 0"),
    ]
    for doc, msg in cases:
        f = tmp_path / "llm_steps.json"
        f.write_text(json.dumps(doc))
        res = CliRunner().invoke(cli, ["validate-llm", "--data", str(f)])
        assert res.exit_code == 2 and msg in res.output, (msg, res.output)
        assert "Traceback" not in res.output
    f.write_text("{not json")
    res = CliRunner().invoke(cli, ["validate-llm", "--data", str(f)])
    assert res.exit_code == 2 and "not valid JSON" in res.output
