"""``memsim run`` and ``memsim validate`` on run configurations, through click's CliRunner."""
import csv
import io
import json

import pytest
from click.testing import CliRunner

from memsim.cli import cli

SMALL = """\
hardware: h100-sxm
workload: {kind: attention, batch: 1, heads: 2, kv_heads: 1, seq_q: 300, seq_k: 300,
           head_dim: 64, causal: true}
schedule: {kind: flash2, block_q: 64, block_k: 64}
"""
CONTRACT_LEVEL_KEYS = ["read_bytes", "write_bytes", "peak_bytes", "capacity_bytes"]


@pytest.fixture
def small(tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text(SMALL)
    return str(path)


def invoke(*args):
    return CliRunner().invoke(cli, list(args))


def test_json_follows_the_contract(small):
    out = invoke("run", small, "--format", "json")
    assert out.exit_code == 0, out.output
    d = json.loads(out.output)
    for key in ("memsim_version", "hardware", "workload", "schedule", "time_s", "flops",
                "levels", "roofline", "lower_bound"):
        assert key in d
    assert d["hardware"] == "h100-sxm" and d["workload"]["kind"] == "attention"
    assert d["workload"]["kv_heads"] == 1 and d["workload"]["causal"] is True
    assert d["schedule"]["kind"] == "flash2" and d["schedule"]["block_q"] == 64
    assert {"hbm", "l2", "sram"} <= set(d["levels"])
    for level in ("hbm", "l2", "sram"):
        values = d["levels"][level]
        assert list(values)[:4] == CONTRACT_LEVEL_KEYS
        assert all(type(values[k]) is int for k in CONTRACT_LEVEL_KEYS)
    assert d["levels"]["l2"]["read_bytes"] > 0 and d["levels"]["hbm"]["read_bytes"] > 0
    assert d["time_s"] > 0 and d["flops"] > 0
    assert set(d["roofline"]) >= {"time_s", "bound"}
    assert d["roofline"]["bound"] in ("compute", "hbm", "l2", "sram")
    lb = d["lower_bound"]
    assert set(lb) == {"level", "io_bytes", "ratio", "formula"} and lb["level"] == "l2"
    l2 = d["levels"]["l2"]
    assert lb["ratio"] == pytest.approx((l2["read_bytes"] + l2["write_bytes"]) / lb["io_bytes"])
    assert "trace" not in d


def test_set_changes_the_run(small):
    base = json.loads(invoke("run", small, "--format", "json").output)
    more = json.loads(invoke("run", small, "--format", "json", "--set", "workload.batch=3",
                             "--set", "schedule.block_q=32").output)
    assert more["workload"]["batch"] == 3 and more["schedule"]["block_q"] == 32
    # three independent sequences, smaller query blocks: K/V are read more often
    assert more["levels"]["l2"]["read_bytes"] > 3 * base["levels"]["l2"]["read_bytes"]
    assert more["levels"]["l2"]["write_bytes"] == 3 * base["levels"]["l2"]["write_bytes"]


def test_csv_and_table(small):
    out = invoke("run", small, "--format", "csv")
    assert out.exit_code == 0
    header, row = list(csv.reader(io.StringIO(out.output)))
    data = dict(zip(header, row))
    assert data["hardware"] == "h100-sxm" and int(data["levels.hbm.read_bytes"]) > 0
    table = invoke("run", small).output
    assert "bound by" in table and "I/O bound l2" in table and "\nhbm " in table


def test_granularity_keeps_bytes(small):
    tile = json.loads(invoke("run", small, "--format", "json").output)
    block = json.loads(invoke("run", small, "--format", "json", "--granularity", "block").output)
    assert block["simulation"]["granularity"] == "block"
    assert block["levels"] == tile["levels"]


def test_trace_file(small, tmp_path):
    trace = tmp_path / "trace.json"
    out = invoke("run", small, "--format", "json", "--trace", str(trace))
    assert out.exit_code == 0, out.output
    events = json.loads(trace.read_text())
    assert events and {"start", "end", "resource", "bytes"} <= set(events[0])
    assert all(e["end"] >= e["start"] for e in events)
    assert "trace" not in json.loads(out.output)      # the trace went to the file


def test_schedule_that_does_not_fit_exits_2_with_numbers(small):
    out = invoke("run", small, "--set", "schedule.block_q=1024", "--set", "schedule.block_k=1024",
                 "--set", "workload.head_dim=256")
    assert out.exit_code == 2
    assert out.output.startswith("memsim: error: flash2 block") and "Traceback" not in out.output
    assert "B of SRAM per block" in out.output and "232,448 B" in out.output


def test_unknown_schedule_lists_known(small):
    out = invoke("run", small, "--set", "schedule.kind=flash3")
    assert out.exit_code == 2
    assert "schedule.kind" in out.output and "unknown schedule kind 'flash3'" in out.output
    assert "flash2" in out.output


def test_validate_accepts_run_configs_and_examples(small, tmp_path):
    out = invoke("validate", small, "examples/gemm-h100.yaml",
                 "examples/decode-flash-decoding-h100.yaml")
    assert out.exit_code == 0, out.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(SMALL.replace("causal: true", "causal: maybe"))
    out = invoke("validate", str(bad))
    assert out.exit_code == 2 and "workload.causal" in out.output
