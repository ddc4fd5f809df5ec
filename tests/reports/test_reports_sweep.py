"""memsim sweep: grids, CSV points, failed points kept, process pool and Dask == serial."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from memsim.cli import cli
from memsim.errors import InputError
from memsim.simulate import simulate
from memsim.sweep import grid_points, parse_grid, read_points_csv, run_sweep

BASE = [("simulation.granularity", "block")]
SMALL = {
    "hardware": "h100-sxm",
    "workload": {"kind": "attention", "batch": 1, "heads": 2, "seq_q": 512, "seq_k": 512,
                 "head_dim": 64, "dtype": "bf16"},
    "schedule": {"kind": "flash2", "block_q": 128, "block_k": 128},
}
GRID = [("workload.seq_q", [256, 512]), ("schedule.kind", ["flash1", "flash2", "nope"])]


@pytest.fixture(scope="module")
def serial():
    return run_sweep(SMALL, grid_points(GRID), overrides=BASE, jobs=1)


def test_parse_grid_and_product_order():
    assert parse_grid("workload.seq_q=1024, 2048") == ("workload.seq_q", [1024, 2048])
    assert parse_grid("workload.causal=true,false") == ("workload.causal", [True, False])
    pts = grid_points([("a", [1, 2]), ("b", ["x", "y", "z"])])
    assert pts[:4] == [{"a": 1, "b": "x"}, {"a": 1, "b": "y"}, {"a": 1, "b": "z"},
                       {"a": 2, "b": "x"}]
    assert len(pts) == 6
    with pytest.raises(InputError, match="PATH=V1,V2"):
        parse_grid("workload.seq_q")
    with pytest.raises(InputError, match="twice"):
        grid_points([("a", [1]), ("a", [2])])


def test_failed_point_is_kept_with_its_parameters(serial):
    assert [r["index"] for r in serial.rows] == list(range(6))
    bad = [r for r in serial.rows if r["param.schedule.kind"] == "nope"]
    assert len(bad) == 2 and len(serial.failed) == 2
    assert all("unknown schedule kind 'nope'" in r["error"] for r in bad)
    assert {r["param.workload.seq_q"] for r in bad} == {256, 512}
    good = [r for r in serial.rows if not r["error"]]
    assert all(r["time_s"] > 0 for r in good)


def test_sweep_row_equals_a_single_run(serial):
    row = serial.rows[4]                     # seq_q=512, flash2
    result = simulate(SMALL, BASE + [("workload.seq_q", 512), ("schedule.kind", "flash2")])
    flat = result.to_flat()
    assert {k: row[k] for k in flat} == flat


def test_process_pool_equals_serial(serial):
    pooled = run_sweep(SMALL, grid_points(GRID), overrides=BASE, jobs=2, chunk_size=1)
    assert pooled.rows == serial.rows
    assert pooled.columns == serial.columns


def test_dask_local_cluster_equals_serial(serial):
    distributed = pytest.importorskip("distributed", reason="dask[distributed] not installed")
    with distributed.LocalCluster(n_workers=2, processes=False, threads_per_worker=1,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        on_dask = run_sweep(SMALL, grid_points(GRID), overrides=BASE, dask=client,
                            chunk_size=2)
    assert on_dask.rows == serial.rows


def test_csv_and_json_outputs(tmp_path, serial):
    csv_text = serial.write(tmp_path / "r.csv").read_text()
    lines = csv_text.splitlines()
    assert lines[0].startswith("index,param.workload.seq_q,param.schedule.kind,error,")
    assert len(lines) == 7
    data = json.loads(serial.write(tmp_path / "r.json").read_text())
    assert data["points"] == 6 and data["failed"] == 2
    assert data["rows"][4]["levels.l2.read_bytes"] == serial.rows[4]["levels.l2.read_bytes"]
    with pytest.raises(InputError, match=".csv or .json"):
        serial.write(tmp_path / "r.txt")


def test_points_csv(tmp_path):
    (tmp_path / "p.csv").write_text("workload.seq_q,schedule.kind\n256,flash2\n512,\n")
    assert read_points_csv(tmp_path / "p.csv") == [
        {"workload.seq_q": 256, "schedule.kind": "flash2"}, {"workload.seq_q": 512}]


def test_sweep_command(tmp_path):
    import yaml
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump(SMALL))
    res = CliRunner().invoke(cli, ["sweep", str(cfg), "--grid", "workload.seq_q=256,512",
                                   "--granularity", "block", "--jobs", "1",
                                   "--out", str(tmp_path / "o.json")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "o.json").read_text())["points"] == 2
    res = CliRunner().invoke(cli, ["sweep", str(cfg), "--grid", "schedule.kind=nope",
                                   "--jobs", "1"])
    assert res.exit_code == 2                 # every point failed
    res = CliRunner().invoke(cli, ["sweep", str(cfg)])
    assert res.exit_code == 2 and "--grid" in res.output


def test_dask_without_scheduler_is_an_input_error():
    pytest.importorskip("distributed")
    with pytest.raises(InputError, match="cannot connect"):
        run_sweep(SMALL, [{}], dask="tcp://127.0.0.1:1", dask_timeout=1)
