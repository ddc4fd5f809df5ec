"""The Result value object: contract keys, integer byte counts, JSON/CSV/table renderings."""
import csv
import io
import json
import math

import pytest

from memsim.result import LevelTraffic, LowerBound, Result, Roofline


def make(**changes):
    fields = dict(
        memsim_version="0.1.0", hardware="h100-sxm",
        workload={"kind": "gemm", "m": 2, "n": 3, "k": 4, "dtype": "bf16"},
        schedule={"kind": "gemm_tiled", "tile_m": 2, "tile_n": 3, "tile_k": 4},
        time_s=1.5e-6, flops=48,
        levels={"sram": LevelTraffic(40, 12, 40, 232448 * 132),
                "hbm": LevelTraffic(40, 12, 52, 80 * 10**9),
                "l2": LevelTraffic(40.0, 12, 52, 50 * 2**20)},
        roofline=Roofline(1e-6, "hbm", "hbm", {"hbm": 1e-6, "bf16_wgmma": 1e-9}),
        lower_bound=LowerBound("l2", 52, 1.0, "max(...)"),
        kernels=({"name": "gemm", "time_s": 1.5e-6},),
        flops_by_class={"bf16_wgmma": 48}, useful_flops=None)
    fields.update(changes)
    return Result(**fields)


def test_contract_keys_and_order():
    d = make().to_dict()
    assert list(d)[:10] == ["memsim_version", "hardware", "workload", "schedule", "time_s",
                            "flops", "levels", "roofline", "lower_bound", "kernels"]
    assert list(d["levels"]) == ["hbm", "l2", "sram"]     # slowest first, whatever the input
    for level in d["levels"].values():
        assert list(level) == ["read_bytes", "write_bytes", "peak_bytes", "capacity_bytes"]
        assert all(type(v) is int for v in level.values())
    assert d["roofline"]["bound"] == "hbm" and d["roofline"]["time_s"] == 1e-6
    assert set(d["lower_bound"]) == {"level", "io_bytes", "ratio", "formula"}


def test_level_bytes_must_be_whole():
    with pytest.raises(ValueError, match="read_bytes must be a whole number of bytes"):
        LevelTraffic(1.5, 0, 0, 0)


def test_json_is_valid_even_with_infinite_ratio():
    r = make(lower_bound=LowerBound("l2", 0, math.inf, "zero"))
    d = json.loads(r.to_json())
    assert d["lower_bound"]["ratio"] is None and d["levels"]["hbm"]["read_bytes"] == 40


def test_csv_one_row_of_dotted_keys():
    rows = list(csv.reader(io.StringIO(make().to_csv())))
    assert len(rows) == 2
    row = dict(zip(*rows))
    assert row["levels.hbm.read_bytes"] == "40" and row["schedule.tile_m"] == "2"
    assert row["roofline.bound"] == "hbm" and row["flops_by_class.bf16_wgmma"] == "48"
    assert "useful_flops" not in row and row["workload.kind"] == "gemm"
    flags = dict(zip(*csv.reader(io.StringIO(make(workload={"causal": True, "window": None})
                                            .to_csv()))))
    assert flags["workload.causal"] == "true" and flags["workload.window"] == ""
    assert "kernels" not in row and not any(k.startswith("trace") for k in row)


def test_table_mentions_levels_and_binding_resource():
    text = make().to_table()
    assert "bound by hbm" in text and "simulated / bound = 1" in text
    for name in ("hbm", "l2", "sram"):
        assert f"\n{name} " in text


def test_result_is_frozen():
    r = make()
    with pytest.raises(Exception):
        r.time_s = 0
    with pytest.raises(TypeError):
        r.workload["m"] = 5
