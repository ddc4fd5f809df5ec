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
