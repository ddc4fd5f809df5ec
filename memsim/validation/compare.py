"""Predicted vs measured, per case and per kernel family (``memsim validate-gpu``).

Comparable quantities (validation/README.md explains the measurement):

* time: the CUDA-event median of the whole case against memsim's ``time_s``;
* HBM bytes: Nsight's ``dram__bytes_read + dram__bytes_write`` against memsim's HBM reads plus
  the HBM writes that happen *while a kernel runs*. Nsight does not see the dirty lines that
  are still in L2 when a kernel ends (caveat 1), so memsim's end-of-kernel write-back (the
  engine's ``kernel_flush``) is left out of the comparable figure;
* L2 read bytes: what the SMs requested from L2 against ``l2.read_bytes`` (what every thread
  block loads; a TMA multicast once). Measured as L2 lookups
  (``lts__t_sectors_srcunit_tex_op_read x 32``) plus the read sectors H100's L2 Request
  Coalescer merged into another SM's concurrent request
  (``lrc__request_sectors_op_read_coalescing_achieved_type_hardware x 32``), both from one
  re-profiled call (``l2_requests.json``). The lookups alone are compared too
  (``l2_lookup_err``): they fall short of the requests by what the coalescer merged, which
  depends on how closely in time thread blocks read shared data (validation/README.md).
  Cases without a coalescer record (device copies) compare the lookups.

Errors are relative: ``(predicted - measured) / measured``.
"""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from ..errors import InputError
from .copies import predict_copy
from .data import DATA_DIR
from .mapping import CaseModel, map_case

__all__ = ["CaseResult", "FamilySummary", "predict_case", "compare_cases", "summarize",
           "load_split", "SPLIT_FILE", "is_held_out_by_hash", "TARGETS", "SpeedupSummary",
           "speedups", "target_figure", "split_for", "predictable"]

SPLIT_FILE = DATA_DIR / "h100" / "split.json"
"""The H100 split; each device with committed data has its own ``split.json``."""

TARGETS = {"time_mape": 0.15, "time_median": 0.10, "hbm_per_case": 0.10, "l2_per_case": 0.15}
"""Issue 5 targets on held-out cases."""


def is_held_out_by_hash(case_id: str) -> bool:
    """The split rule: a case is held out when the last hex digit of sha256(id) is odd."""
    return int(hashlib.sha256(case_id.encode()).hexdigest()[-1], 16) % 2 == 1


def load_split(path: str | Path = SPLIT_FILE) -> dict:
    """The committed split: ``{"rule": ..., "held_out": [ids], "calibration": [ids]}``;
    ``path`` is a split file or the name of a device with committed data."""
    if not str(path).endswith(".json"):
        path = DATA_DIR / str(path) / "split.json"
    with open(path) as f:
        doc = json.load(f)
    if not {"held_out", "calibration"} <= set(doc):
        raise InputError(f"{path}: expected keys 'held_out' and 'calibration'")
    return doc


def split_for(dataset) -> dict:
    """The committed split of ``dataset``'s device; for data of a device without one (measured
    elsewhere), every case is held out, since nothing of it calibrated a preset."""
    path = DATA_DIR / dataset.device / "split.json"
    if path.is_file():
        return load_split(path)
    return {"held_out": [c.id for c in dataset.cases], "calibration": []}


@dataclass(frozen=True)
class CaseResult:
    """One case measured vs predicted (None where the data has no such figure)."""

    case_id: str
    family: str
    model: CaseModel
    time_meas: float | None
    time_pred: float
    hbm_meas: float | None
    hbm_pred: float | None
    l2_meas: float | None
    l2_pred: float | None
    held_out: bool = False
    detail: dict = field(default_factory=dict)
    l2_lookup_meas: float | None = None   # the main run's L2 lookups (before coalescing)

    @staticmethod
    def _err(pred, meas):
        if pred is None or meas is None or meas <= 0:
            return None
        return (pred - meas) / meas

    @property
    def time_err(self):
        return self._err(self.time_pred, self.time_meas)

    @property
    def hbm_err(self):
        return self._err(self.hbm_pred, self.hbm_meas)

    @property
    def l2_err(self):
        return self._err(self.l2_pred, self.l2_meas)

    @property
    def l2_lookup_err(self):
        return self._err(self.l2_pred, self.l2_lookup_meas)


def _tiled(model: CaseModel, hw) -> tuple[float, float, float, dict]:
    """Simulate a tiled case; returns time, comparable HBM bytes, L2 read bytes, detail."""
    from ..config import load_run_config
    from ..engine import simulate_program
    cfg = dict(model.config)
    if hw is not None:          # a calibrated variant: pass it as plain data
        cfg["hardware"] = hw.to_dict()
    rc = load_run_config(cfg)
    hw = rc.hardware
    kernels = rc.schedule.kernels()
    er = simulate_program(hw, kernels, granularity=rc.granularity,
                          l2_dirty_bytes=rc.l2_dirty_bytes)
    # Nsight sees neither the end-of-kernel write-back nor (it flushes L2 before each kernel)
    # that of the data dirty at the start (see the module docstring)
    flush, dirty = er.kernel_end_writeback, er.dirty_writeback
    hbm_r, hbm_w = float(er.levels["hbm"].read_bytes), float(er.levels["hbm"].write_bytes)
    return (er.time_s, hbm_r + hbm_w - flush - dirty, float(er.levels["l2"].read_bytes),
            {"hbm_read": hbm_r, "hbm_write": hbm_w, "end_of_kernel_writeback": flush,
             "l2_dirty_writeback": dirty,
             "schedule": dict(rc.schedule.resolved())})


def predict_case(model: CaseModel, hw=None) -> tuple[float, float | None, float | None, dict]:
    """Predicted (time, comparable HBM bytes, L2 read bytes, detail) of one mapped case.
    ``hw`` is a Hardware (default: the model's, its device's preset)."""
    if model.kind == "tiled":
        return _tiled(model, hw)
    if hw is None:
        from ..hardware import load_hardware
        hw = load_hardware(model.hardware)
    if model.kind == "math":
        from .math_backend import predict_math_case
        return predict_math_case(model.case, hw)
    cp = predict_copy(hw, model.copy["direction"], model.copy["bytes"])
    if model.copy["direction"] != "d2d":
        return cp.time_s, None, None, {}
    return (cp.time_s, cp.hbm_read_bytes + cp.hbm_write_visible, cp.l2_read_bytes,
            {"hbm_read": cp.hbm_read_bytes, "hbm_write": cp.hbm_write_bytes})


def predictable(dataset, *, ids: Iterable[str] | None = None,
                families: Iterable[str] | None = None, hardware=None) -> list[tuple]:
    """(case, model) of every case of ``dataset`` that :func:`compare_cases` predicts: mapped
    (not a launch or latency record), measured, and among ``ids`` / ``families`` if given."""
    want = set(ids) if ids is not None else None
    fams = set(families) if families is not None else None
    out = []
    for case in dataset.cases:
        if want is not None and case.id not in want:
            continue
        model = map_case(case, hardware=hardware, device=dataset.device)
        if model is None or (fams is not None and model.family not in fams):
            continue
        if case.time_s is None and case.kernels is None:
            continue
        out.append((case, model))
    return out


def compare_cases(dataset, hw=None, *, ids: Iterable[str] | None = None,
                  held_out: Sequence[str] = (), families: Iterable[str] | None = None,
                  progress=None, hardware=None) -> list[CaseResult]:
    """Predict every mappable case of ``dataset`` (optionally only ``ids`` or ``families``)
    on its device's preset, or on ``hardware`` (a preset name or YAML path) where given."""
    held = set(held_out)
    out = []
    for case, model in predictable(dataset, ids=ids, families=families, hardware=hardware):
        t, hbm, l2, detail = predict_case(model, hw)
        has_ncu = case.kernels is not None
        has_l2 = has_ncu and l2 is not None
        requested = case.l2_requested_bytes
        out.append(CaseResult(
            case.id, model.family, model, case.time_s, t,
            case.hbm_bytes if has_ncu and hbm is not None else None,
            hbm if has_ncu else None,
            (case.l2_read_bytes if requested is None else requested) if has_l2 else None,
            l2 if has_ncu else None, case.id in held, detail,
            case.l2_read_bytes if has_l2 else None))
        if progress:
            progress(out[-1])
    return out


@dataclass(frozen=True)
class FamilySummary:
    """Error summary of one family: absolute relative errors (fractions)."""

    family: str
    n: int
    time_mape: float | None
    time_median: float | None
    hbm_max: float | None
    hbm_median: float | None
    l2_max: float | None
    l2_median: float | None
    l2_lookup_max: float | None = None    # against the lookups alone (informational)

    def meets(self) -> dict:
        """Which issue-5 targets this family meets (None where it has no data)."""
        def ok(v, lim):
            return None if v is None else v <= lim
        return {"time_mape": ok(self.time_mape, TARGETS["time_mape"]),
                "time_median": ok(self.time_median, TARGETS["time_median"]),
                "hbm_per_case": ok(self.hbm_max, TARGETS["hbm_per_case"]),
                "l2_per_case": ok(self.l2_max, TARGETS["l2_per_case"])}


def _stats(values):
    v = np.abs(np.array([x for x in values if x is not None and math.isfinite(x)]))
    if not len(v):
        return None, None, None
    return float(v.mean()), float(np.median(v)), float(v.max())


def summarize(results: Sequence[CaseResult]) -> list[FamilySummary]:
    """One summary per family (sorted), then ``all``."""
    groups: dict[str, list[CaseResult]] = {}
    for r in results:
        groups.setdefault(r.family, []).append(r)
    out = []
    for name in sorted(groups) + ["all"]:
        rs = results if name == "all" else groups[name]
        tm, tmed, _ = _stats(r.time_err for r in rs)
        _, hmed, hmax = _stats(r.hbm_err for r in rs)
        _, lmed, lmax = _stats(r.l2_err for r in rs)
        _, _, lkmax = _stats(r.l2_lookup_err for r in rs)
        out.append(FamilySummary(name, len(rs), tm, tmed, hmax, hmed, lmax, lmed, lkmax))
    return out


@dataclass(frozen=True)
class SpeedupSummary:
    """Measured vs predicted speedup of one family from device A to device B (time on A over
    time on B), over the cases both devices measured: medians, and the median and largest
    absolute relative error of the predicted speedup."""

    family: str
    n: int
    measured_median: float
    predicted_median: float
    err_median: float
    err_max: float


def speedups(results_a: Sequence[CaseResult], results_b: Sequence[CaseResult]
             ) -> tuple[list[tuple[str, str, float, float]], list[SpeedupSummary]]:
    """How well memsim predicts the speedup of each case from device A to device B:
    ``(per-case rows (id, family, measured, predicted), per-family summaries then "all")``.
    Cases without a measured time on either device are left out."""
    a = {r.case_id: r for r in results_a if r.time_meas and r.time_pred}
    rows = [(r.case_id, r.family, a[r.case_id].time_meas / r.time_meas,
             a[r.case_id].time_pred / r.time_pred)
            for r in results_b if r.case_id in a and r.time_meas and r.time_pred]
    groups: dict[str, list] = {}
    for row in rows:
        groups.setdefault(row[1], []).append(row)
    out = []
    for name in sorted(groups) + (["all"] if rows else []):
        rs = rows if name == "all" else groups[name]
        meas = np.array([x[2] for x in rs])
        pred = np.array([x[3] for x in rs])
        err = np.abs(pred / meas - 1)
        out.append(SpeedupSummary(name, len(rs), float(np.median(meas)),
                                  float(np.median(pred)), float(np.median(err)),
                                  float(err.max())))
    return rows, out


def target_figure(results: Sequence[CaseResult], family: str, target: str
                  ) -> tuple[float | None, str]:
    """The figure of one issue-5 target (a key of TARGETS) for one family of ``results``, and
    for the per-case targets the worst case (``"id: +x%"``); the figure is None where the
    family has no such data (e.g. PCIe copies have no Nsight counters)."""
    rs = [r for r in results if r.family == family]
    if not rs:
        raise InputError(f"no cases of family {family!r}")
    s = {x.family: x for x in summarize(rs)}[family]
    value = {"time_mape": s.time_mape, "time_median": s.time_median,
             "hbm_per_case": s.hbm_max, "l2_per_case": s.l2_max}[target]
    worst = ""
    if target in ("hbm_per_case", "l2_per_case") and value is not None:
        attr = "hbm_err" if target == "hbm_per_case" else "l2_err"
        bad = max((r for r in rs if getattr(r, attr) is not None),
                  key=lambda r: abs(getattr(r, attr)))
        worst = f"{bad.case_id}: {getattr(bad, attr):+.1%}"
    return value, worst
