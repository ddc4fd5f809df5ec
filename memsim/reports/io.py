"""Reading results back: the JSON of ``memsim run --format json`` as a ``Result``."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from ..errors import InputError
from ..result import LevelTraffic, LowerBound, Result, Roofline

__all__ = ["result_from_dict", "load_result_json"]

_REQUIRED = ("memsim_version", "hardware", "workload", "schedule", "time_s", "flops", "levels")


def result_from_dict(data: Mapping[str, Any], name: str = "<result>") -> Result:
    """Rebuild a :class:`Result` from ``Result.to_dict()`` / the JSON result contract. Extra
    keys the Result does not hold (e.g. ``llm``) are ignored."""
    if not isinstance(data, Mapping):
        raise InputError(f"{name}: expected a JSON object (memsim run --format json), got "
                         f"{type(data).__name__}")
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise InputError(f"{name}: not a memsim result, missing key(s) {', '.join(missing)}")
    try:
        levels = {k: LevelTraffic(**{f: int(v.get(f) or 0) for f in
                                     ("read_bytes", "write_bytes", "peak_bytes",
                                      "capacity_bytes")})
                  for k, v in data["levels"].items()}
        rl = data.get("roofline")
        roofline = None if not rl else Roofline(
            float(rl["time_s"]), str(rl["bound"]), str(rl.get("resource", "")),
            {k: float(v) for k, v in (rl.get("times_s") or {}).items()})
        lb = data.get("lower_bound")
        lower = None if not lb else LowerBound(str(lb["level"]), float(lb["io_bytes"]),
                                               float(lb["ratio"] if lb["ratio"] is not None
                                                     else float("inf")),
                                               str(lb.get("formula", "")))
        trace = data.get("trace")
        return Result(
            memsim_version=str(data["memsim_version"]), hardware=str(data["hardware"]),
            workload=dict(data["workload"]), schedule=dict(data["schedule"] or {}),
            time_s=float(data["time_s"]), flops=data["flops"], levels=levels,
            roofline=roofline, lower_bound=lower, useful_flops=data.get("useful_flops"),
            kernels=tuple(dict(k) for k in data.get("kernels") or ()),
            flops_by_class=dict(data.get("flops_by_class") or {}),
            busy_s=dict(data.get("busy_s") or {}),
            trace=None if trace is None else tuple(dict(e) for e in trace),
            simulation=dict(data.get("simulation") or {}))
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError(f"{name}: malformed memsim result ({type(exc).__name__}: {exc})") \
            from None


def load_result_json(path: "str | Path") -> Result:
    """Load a result written by ``memsim run FILE --format json > result.json``."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from None
    return result_from_dict(data, str(path))
