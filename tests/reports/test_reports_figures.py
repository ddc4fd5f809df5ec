"""Every figure type renders from small runs; the numbers they plot are the result's."""
from __future__ import annotations

import math

import numpy as np
import pytest

from memsim.errors import InputError
from memsim.reports import (busy_intervals, bytes_per_level_figure, predicted_vs_measured_figure,
                            result_from_dict, roofline_data, roofline_figure, save_figure,
                            sram_sweep, timeline_figure, traffic_vs_sram_figure)
from memsim.reports.timeline import timeline_rows
from memsim.reports.validation import error_summary

MIN_PNG = 15_000      # a labelled 7-inch figure at 120 dpi is tens of KB; a blank one ~5 KB


def _check_files(paths):
    assert [p.suffix for p in paths] == [".png", ".svg"]
    png, svg = paths
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert png.stat().st_size > MIN_PNG
    text = svg.read_text()
    assert "<svg" in text and text.count("<path") > 20


def test_bytes_per_level_renders(tmp_path, traced_result, standard_result):
    _check_files(save_figure(bytes_per_level_figure(traced_result), tmp_path, "one"))
    fig = bytes_per_level_figure([traced_result, standard_result])
    _check_files(save_figure(fig, tmp_path, "two"))
    # one read and one write bar per (run, level that moved bytes): hbm, l2, sram
    assert len(fig.axes[0].patches) == 2 * 2 * 3


def test_roofline_renders_and_uses_the_results_bandwidths(tmp_path, traced_result,
                                                          small_config):
    data = roofline_data(traced_result)
    hw = small_config.hardware
    roofs = {r.level: r for r in data.roofs}
    assert set(roofs) == {"hbm", "l2", "sram"}
    # sram and l2 read and write at the same bandwidth: the roof is that bandwidth exactly
    assert roofs["sram"].bandwidth == pytest.approx(hw.memory("sram").read_bandwidth, rel=1e-12)
    assert roofs["l2"].bandwidth == pytest.approx(hw.memory("l2").read_bandwidth, rel=1e-12)
    assert roofs["l2"].intensity == traced_result.flops / (
        traced_result.levels["l2"].read_bytes + traced_result.levels["l2"].write_bytes)
    assert data.achieved_flops_per_s <= data.peak_flops_per_s
    _check_files(save_figure(roofline_figure([traced_result]), tmp_path, "roofline"))


def test_roofline_without_roofline_is_an_input_error(traced_result):
    import dataclasses
    with pytest.raises(InputError, match="roofline"):
        roofline_data(dataclasses.replace(traced_result, roofline=None))


def test_busy_intervals_union():
    iv = busy_intervals([5, 0, 1, 10, 3], [6, 2, 3, 11, 4])
    assert iv.tolist() == [[0, 4], [5, 6], [10, 11]]      # [0,3) and [3,4) touch: merged
    assert busy_intervals([0, 1], [5, 2]).tolist() == [[0, 5]]
    assert busy_intervals([], []).shape == (0, 2)


def test_timeline_renders_from_the_trace(tmp_path, traced_result):
    rows = timeline_rows(traced_result.trace, max_sms=1)
    labels = [r[0] for r in rows]
    assert labels[0].startswith("HBM") and "SM 0: load" in labels
    # every busy interval lies inside the run
    for _, _, iv in rows:
        assert iv.min() >= 0 and iv.max() <= traced_result.time_s * (1 + 1e-12)
    _check_files(save_figure(timeline_figure(traced_result), tmp_path, "timeline"))


def test_timeline_needs_a_trace(standard_result):
    with pytest.raises(InputError, match="trace"):
        timeline_figure(standard_result)


def test_sram_sweep_matches_the_simulation_at_the_hardware_sram(tmp_path, small_config,
                                                                traced_result):
    hw_m = small_config.hardware.memory("sram").max_per_block_bytes
    sweep = sram_sweep(small_config, sram_bytes=[16384, 65536, hw_m],
                       schedules=("flash1", "flash2"), options={"flash2": {"block_q": 128,
                                                                          "block_k": 128}})
    moved = traced_result.levels["l2"].read_bytes + traced_result.levels["l2"].write_bytes
    # closed form (bounds) == simulated bytes; lower bound == the result's lower bound
    assert sweep.traffic["flash2"][-1] == moved
    assert sweep.lower_bound[-1] == traced_result.lower_bound.io_bytes
    assert sweep.crossover_bytes == 64 * 64 * 2
    assert np.all(sweep.ratio("flash1") >= 1.0)          # a valid lower bound
    assert np.all(np.diff(sweep.lower_bound) <= 0)        # more SRAM never raises the bound
    _check_files(save_figure(traffic_vs_sram_figure(sweep), tmp_path, "sram"))


def test_sram_sweep_rejects_gemm():
    with pytest.raises(InputError, match="attention"):
        sram_sweep({"hardware": "h100-sxm", "workload": {"kind": "gemm", "m": 256, "n": 256,
                                                          "k": 256},
                    "schedule": {"kind": "gemm_tiled"}})


def test_predicted_vs_measured(tmp_path):
    points = [(1.1e-3, 1.0e-3, "gemm"), (2.0e-3, 2.5e-3, "attention"),
              {"predicted": 5e-4, "measured": 5e-4, "family": "gemm"}]
    s = error_summary([p for p in __import__("memsim.reports", fromlist=["as_points"])
                       .as_points(points)])
    assert s["all"]["n"] == 3
    assert s["all"]["max_rel_error"] == pytest.approx(0.2)
    assert s["gemm"]["median_rel_error"] == pytest.approx(0.05)
    _check_files(save_figure(predicted_vs_measured_figure(points), tmp_path, "val"))
    with pytest.raises(InputError, match="numbers"):
        predicted_vs_measured_figure([("a", 1.0, "x")])


def test_result_json_round_trip(traced_result):
    data = traced_result.to_dict()
    again = result_from_dict(data)
    assert again.to_dict() == data
    assert math.isclose(again.time_s, traced_result.time_s)
    with pytest.raises(InputError, match="missing key"):
        result_from_dict({"hardware": "x"})


def test_points_from_case_results():
    from types import SimpleNamespace
    from memsim.reports import points_from_case_results
    rows = [SimpleNamespace(case_id="a", family="gemm", time_pred=2.0, time_meas=1.0,
                            hbm_pred=5.0, hbm_meas=None),
            SimpleNamespace(case_id="b", family="prefill", time_pred=3.0, time_meas=None,
                            hbm_pred=7.0, hbm_meas=8.0)]
    assert [(p.id, p.predicted, p.measured) for p in points_from_case_results(rows)] == [
        ("a", 2.0, 1.0)]
    assert [(p.id, p.family) for p in points_from_case_results(rows, "hbm")] == [
        ("b", "prefill")]
    with pytest.raises(InputError, match="quantity"):
        points_from_case_results(rows, "flops")
