"""The llm workload kind: loading, memsim run (table / json), capacity errors."""
import json

import pytest
from click.testing import CliRunner

from memsim.cli import cli
from memsim.config import load_run_config
from memsim.errors import CapacityError, SpecError
from memsim.hardware import load_hardware
from memsim.llm.simulate import run_llm
from memsim.llm.workload import LlmWorkload

BASE = {"hardware": "h100-sxm",
        "workload": {"kind": "llm", "model": "llama-2-7b", "batch": 1, "prompt_len": 512,
                     "gen_len": 8}}


def test_workload_loads_strictly():
    cfg = load_run_config(BASE, [("workload.attention_schedule", "standard")])
    wl = cfg.workload
    assert isinstance(wl, LlmWorkload) and wl.prefill_schedule == wl.decode_schedule == \
        "standard"
    with pytest.raises(SpecError, match="unknown key 'prompt_length'"):
        load_run_config(BASE, [("workload.prompt_length", 5)])
    with pytest.raises(SpecError, match="unknown model 'gpt-5'"):
        load_run_config(BASE, [("workload.model", "gpt-5")])
    with pytest.raises(SpecError, match="max_positions"):
        load_run_config(BASE, [("workload.prompt_len", 4090)])
    with pytest.raises(SpecError, match="attention_schedule"):
        load_run_config(BASE, [("workload.attention_schedule", "flash9")])


def test_does_not_fit_names_the_numbers():
    hw = load_hardware("h100-sxm")
    wl = LlmWorkload.from_data({"model": "llama-2-7b", "batch": 64, "prompt_len": 4000,
                                "gen_len": 96})
    # 64 x 4096 tokens x 512 KiB = 128 GiB of KV; 80 GB - 12.55 GiB of weights = 61.97 GiB
    with pytest.raises(CapacityError, match=r"KV cache needs 128\.0 GiB; hbm has 62\.0 GiB "
                                            "left after weights"):
        run_llm(wl, hw, simulate=False)


def test_memsim_run_table_and_json():
    runner = CliRunner()
    with runner.isolated_filesystem():
        with open("llm.yaml", "w") as f:
            json.dump(BASE, f)                 # JSON is YAML
        out = runner.invoke(cli, ["run", "llm.yaml", "--format", "table"])
        assert out.exit_code == 0, out.output
        assert "q_proj" in out.output and "FLOP/B" in out.output
        assert "prefill latency" in out.output and "tokens/s" in out.output
        out = runner.invoke(cli, ["run", "llm.yaml", "--format", "json"])
        data = json.loads(out.output)
        assert data["workload"]["kind"] == "llm"
        assert data["levels"]["hbm"]["capacity_bytes"] == 80_000_000_000
        ops = {(r["stage"], r["name"]) for r in data["llm"]["operators"]}
        assert ("prefill", "attention") in ops and ("decode", "lm_head") in ops
        totals = data["llm"]["totals"]
        assert data["time_s"] >= totals["prefill"]["time_s"] + totals["decode"]["time_s"] - 1e-12
        out = runner.invoke(cli, ["run", "llm.yaml", "--set", "workload.batch=512",
                                  "--set", "workload.prompt_len=2000"])
        assert out.exit_code == 2 and "KV cache needs" in out.output


def test_decode_totals_add_up():
    hw = load_hardware("h100-sxm")
    wl = LlmWorkload.from_data({"model": "llama-3-8b", "batch": 4, "prompt_len": 1000,
                                "gen_len": 50})
    r = run_llm(wl, hw, simulate=False)
    assert len(r.decode_step_times_s) == 50
    assert r.tpot_s(1001) == pytest.approx(r.decode_step_times_s[0])
    assert r.tpot_s(1050) == pytest.approx(r.decode_step_times_s[-1])
    assert r.decode_step_times_s[-1] > r.decode_step_times_s[0]      # more KV to read
    assert r.tokens_per_s == pytest.approx(4 * 50 / r.decode_step_times_s.sum())


def test_each_distinct_shape_is_simulated_once_and_decode_is_interpolated():
    from memsim.llm.analysis import analyse, decode_contexts
    from memsim.llm.operators import MEMORY_KERNEL_KINDS, decode_operators, prefill_operators
    from memsim.llm.roofline import RooflineMachine
    wl = LlmWorkload.from_data({"model": "llama-2-7b", "prompt_len": 300, "gen_len": 40,
                                "decode_samples": 3})
    machine = RooflineMachine("test", 1e12, 1e14, 1e13)
    calls = []

    def key(op):                        # memory kernels are keyed by their bytes
        return op.shape or ("kernel", op.bytes)

    def fake(op):                       # a simulator whose time is affine in the bytes
        calls.append(key(op))
        return 1e-6 + op.bytes / 1e12

    r = analyse(wl, machine, simulate_op=fake)
    assert len(calls) == len(set(calls))
    # prefill: q/k/v/o (one shape under MHA), gate/up, down, attention, lm_head (m = batch);
    # decode: q/k/v/o, gate/up, down at m = 1 (lm_head is the prefill one) and attention at the
    # 3 sampled contexts (the first is the first step's); plus one memory-bound kernel per
    # distinct byte count of the norms, adds, activation, rotary and embedding
    kernels = {key(op) for op in prefill_operators(wl) + decode_operators(wl, 301)
               if op.kind in MEMORY_KERNEL_KINDS}
    assert len(kernels) >= 8 and len(calls) == 5 + 3 + 3 + len(kernels)
    for i, ctx in enumerate(decode_contexts(wl)):
        ops = decode_operators(wl, int(ctx))
        exact = sum((fake(op) if op.shape or op.kind in MEMORY_KERNEL_KINDS else 0.0)
                    * op.count for op in ops)
        assert r.decode_step_sim_s[i] == pytest.approx(exact, rel=1e-9)


def test_engine_simulates_llm_operators():
    hw = load_hardware("h100-sxm")
    wl = LlmWorkload.from_data({"model": "llama-2-7b", "prompt_len": 256, "gen_len": 4,
                                "decode_samples": 2})
    r = run_llm(wl, hw)
    if not r.simulated:
        pytest.skip("engine not installed")
    for name in ("q_proj", "attention", "down_proj", "lm_head"):
        # a simulation cannot beat the roofline of the same work
        roof = next(c.time_s for c in r.decode_first if c.op.name == name)
        assert r.decode_sim_s[name] >= roof * 0.99
