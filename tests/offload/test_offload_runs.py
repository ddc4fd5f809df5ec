"""``memsim run`` on the offload examples: exit codes, result keys, per-level bytes, busy times."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from memsim.cli import cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.parametrize("name,busy", [
    ("offload_flexgen_opt30b_t4.yaml", {"gpu", "cpu", "pcie_h2d", "pcie_d2h"}),
    ("offload_llm_in_flash_opt6.7b_m1max.yaml", {"ssd", "compute"}),
    ("offload_instinfer_opt13b_csd.yaml", {"gpu", "csd", "p2p"})])
def test_examples_run(name, busy):
    res = CliRunner().invoke(cli, ["run", str(EXAMPLES / name), "--format", "json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert busy <= set(out["busy_s"])
    assert out["time_s"] >= max(out["busy_s"].values()) - 1e-9
    assert "ssd" in out["levels"]


def test_set_override_and_bad_input():
    path = str(EXAMPLES / "offload_instinfer_opt13b_csd.yaml")
    ok = CliRunner().invoke(cli, ["run", path, "--format", "json", "--set",
                                  "workload.mode=ssd_offload"])
    assert ok.exit_code == 0 and json.loads(ok.output)["levels"]["ssd"]["read_bytes"] > 0
    bad = CliRunner().invoke(cli, ["run", path, "--set", "workload.mode=nope"])
    assert bad.exit_code == 2 and "mode" in bad.output
