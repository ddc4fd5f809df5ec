"""The result of one simulated run, and its JSON / table / CSV renderings.

``Result.to_dict()`` is the **contract** of ../shared/DESIGN.md: ``memsim_version``,
``hardware``, ``workload``, ``schedule`` (resolved values), ``time_s``, ``flops``,
``levels.{hbm,l2,sram}.{read_bytes, write_bytes, peak_bytes, capacity_bytes}`` (integers),
``roofline.{time_s, bound}`` and ``lower_bound.{level, io_bytes, ratio, formula}``. Extra keys
follow them: ``useful_flops``, ``kernels`` (per-kernel times), ``flops_by_class``, ``busy_s``
(busy time per resource), ``roofline.resource`` and ``roofline.times_s`` (time per resource),
``simulation`` (granularity, events, wall-clock seconds of the simulation) and ``trace`` when
asked.
"""
from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from .units import format_quantity

__all__ = ["LevelTraffic", "Roofline", "LowerBound", "Result", "LEVEL_ORDER"]

LEVEL_ORDER = ("ssd", "host", "hbm", "l2", "sram")
"""Display order of the contract's level names: slowest first; other names follow."""


@dataclass(frozen=True)
class LevelTraffic:
    """Bytes read from / written into one memory level, its peak occupancy and capacity
    (capacity of all instances together, e.g. all SMs' shared memory for ``sram``)."""

    read_bytes: int
    write_bytes: int
    peak_bytes: int
    capacity_bytes: int

    def __post_init__(self) -> None:
        for name in ("read_bytes", "write_bytes", "peak_bytes", "capacity_bytes"):
            value = getattr(self, name)
            if value != int(value):
                raise ValueError(f"{name} must be a whole number of bytes, got {value!r}")
            object.__setattr__(self, name, int(value))

    def to_dict(self) -> dict:
        return {"read_bytes": self.read_bytes, "write_bytes": self.write_bytes,
                "peak_bytes": self.peak_bytes, "capacity_bytes": self.capacity_bytes}


@dataclass(frozen=True)
class Roofline:
    """Roofline time (the slowest resource at full rate) and what binds: ``bound`` is
    ``"compute"`` or the memory level's name (``"hbm"``, ``"l2"``, ``"sram"``); ``resource``
    the binding instruction class or level; ``times_s`` every resource's time."""

    time_s: float
    bound: str
    resource: str = ""
    times_s: Mapping[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        out = {"time_s": self.time_s, "bound": self.bound}
        if self.resource:
            out["resource"] = self.resource
        if self.times_s:
            out["times_s"] = dict(self.times_s)
        return out


@dataclass(frozen=True)
class LowerBound:
    """I/O lower bound on the traffic across one level's boundary, and simulated ÷ bound."""

    level: str
    io_bytes: float
    ratio: float
    formula: str

    def to_dict(self) -> dict:
        return {"level": self.level, "io_bytes": self.io_bytes, "ratio": self.ratio,
                "formula": self.formula}


@dataclass(frozen=True)
class Result:
    """Everything one run produced; reports consume this, never the engine's internals."""

    memsim_version: str
    hardware: str
    workload: Mapping[str, Any]
    schedule: Mapping[str, Any]
    time_s: float
    flops: float
    levels: Mapping[str, LevelTraffic]
    roofline: Roofline | None = None
    lower_bound: LowerBound | None = None
    useful_flops: float | None = None
    kernels: tuple[Mapping[str, Any], ...] = ()
    flops_by_class: Mapping[str, float] = field(default_factory=dict)
    busy_s: Mapping[str, float] = field(default_factory=dict)
    trace: tuple[Mapping[str, Any], ...] | None = None
    simulation: Mapping[str, Any] = field(default_factory=dict)
    numerics: Mapping[str, Any] | None = None   # from ``memsim run --check-numerics``

    def __post_init__(self) -> None:
        names = sorted(self.levels, key=lambda n: (LEVEL_ORDER.index(n) if n in LEVEL_ORDER
                                                   else len(LEVEL_ORDER), n))
        object.__setattr__(self, "levels", MappingProxyType({n: self.levels[n] for n in names}))
        for name in ("workload", "schedule", "flops_by_class", "busy_s", "simulation"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))

    # -- data -----------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """The JSON result of the contract (plain data; byte counts are ints)."""
        out: dict[str, Any] = {
            "memsim_version": self.memsim_version,
            "hardware": self.hardware,
            "workload": dict(self.workload),
            "schedule": dict(self.schedule),
            "time_s": self.time_s,
            "flops": self.flops,
            "levels": {name: t.to_dict() for name, t in self.levels.items()},
            "roofline": self.roofline.to_dict() if self.roofline else None,
            "lower_bound": self.lower_bound.to_dict() if self.lower_bound else None,
        }
        if self.useful_flops is not None:
            out["useful_flops"] = self.useful_flops
        if self.kernels:
            out["kernels"] = [dict(k) for k in self.kernels]
        if self.flops_by_class:
            out["flops_by_class"] = dict(self.flops_by_class)
        if self.busy_s:
            out["busy_s"] = dict(self.busy_s)
        if self.simulation:
            out["simulation"] = dict(self.simulation)
        if self.numerics is not None:
            out["numerics"] = dict(self.numerics)
        if self.trace is not None:
            out["trace"] = [dict(e) for e in self.trace]
        return out

    def to_json(self, indent: int | None = 2) -> str:
        """``to_dict()`` as JSON (non-finite floats become null so the output is valid JSON)."""
        return json.dumps(_finite(self.to_dict()), indent=indent)

    def to_flat(self) -> dict[str, Any]:
        """One flat row: dotted keys (``levels.hbm.read_bytes``) of the contract keys and the
        per-class FLOPs; for CSV and sweeps (no trace, no per-kernel list)."""
        data = self.to_dict()
        for key in ("trace", "kernels", "busy_s", "simulation"):
            data.pop(key, None)
        flat: dict[str, Any] = {}
        _flatten(data, "", flat)
        return flat

    def to_csv(self, header: bool = True) -> str:
        """``to_flat()`` as CSV: a header line (optional) and one data line."""
        flat = self.to_flat()
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        if header:
            writer.writerow(flat.keys())
        writer.writerow([_csv_cell(v) for v in flat.values()])
        return buf.getvalue()

    # -- human-readable -------------------------------------------------------------------------
    def to_table(self) -> str:
        """A readable summary: run, time, FLOPs, per-level traffic, roofline, lower bound."""
        wl = ", ".join(f"{k}={v}" for k, v in self.workload.items()
                       if k != "kind" and v not in (None, False))
        sched = ", ".join(f"{k}={v}" for k, v in self.schedule.items() if k != "kind")
        lines = [
            f"hardware  {self.hardware}",
            f"workload  {self.workload.get('kind')}: {wl}",
            f"schedule  {self.schedule.get('kind')}: {sched}",
            f"time      {format_quantity(self.time_s, 'time')}",
            f"flops     {self.flops:.4g}" + (f" (useful {self.useful_flops:.4g})"
                                             if self.useful_flops is not None else ""),
            "",
            f"{'level':<6} {'read':>12} {'write':>12} {'peak':>12} {'capacity':>12}",
        ]
        for name, t in self.levels.items():
            cells = [_bytes(t.read_bytes), _bytes(t.write_bytes), _bytes(t.peak_bytes),
                     _bytes(t.capacity_bytes)]
            lines.append(f"{name:<6} " + " ".join(f"{c:>12}" for c in cells))
        if self.roofline is not None:
            lines += ["", f"roofline  {format_quantity(self.roofline.time_s, 'time')}, "
                          f"bound by {self.roofline.bound}"
                      + (f" ({self.roofline.resource})"
                         if self.roofline.resource not in ("", self.roofline.bound) else "")
                      + (f" (simulated / roofline = {self.time_s / self.roofline.time_s:.3g})"
                         if self.roofline.time_s > 0 else "")]
        if self.lower_bound is not None:
            lb = self.lower_bound
            lines.append(f"I/O bound {lb.level}: {_bytes(lb.io_bytes)}, simulated / bound = "
                         f"{lb.ratio:.4g}  [{lb.formula}]")
        if self.kernels:
            lines += ["", "kernels"]
            for k in self.kernels:
                lines.append(f"  {k.get('name', '?'):<24} "
                             f"{format_quantity(k.get('time_s', 0.0), 'time')}")
        if self.numerics is not None:
            n = self.numerics
            shape = n.get("shape") or {}
            lines += ["", f"numerics  relative error {n.get('rel_error'):.3g} "
                          f"(tolerance {n.get('tolerance'):.3g}): "
                          f"{'pass' if n.get('passed') else 'FAIL'}"
                          + (f"; scaled down to {shape}" if n.get("scaled_down") else "")]
        return "\n".join(lines)


def _bytes(value: float) -> str:
    """Bytes with a binary prefix and 4 significant digits (``117.7 MiB``)."""
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(value) >= size:
            return f"{value / size:.4g} {unit}"
    return f"{value:.4g} B"


def _csv_cell(value: Any) -> Any:
    """Empty for None, ``true``/``false`` for booleans (as in the YAML and JSON)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _flatten(value: Any, prefix: str, out: dict) -> None:
    if isinstance(value, Mapping):
        for k, v in value.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    else:
        out[prefix] = value


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value
