"""Roofline and hierarchical roofline from plain numbers (SI units).

Independent of the hardware dataclasses: callers pass FLOPs per instruction class, bytes per
memory level, rates (FLOP/s) and bandwidths (bytes/s).

* :func:`roofline`: each resource is busy for ``work / throughput`` seconds (``flops[c] /
  rates[c]`` per instruction class, ``bytes[l] / bandwidths[l]`` per memory level). Resources
  run concurrently, so the roofline time is the largest of these, and that resource binds
  (LLM-Viewer's ``roofline_analyze`` is the one-class, one-level case).
* :func:`hierarchical_roofline`: one roof per memory level. With arithmetic intensity
  ``AI_l = flops / bytes_l`` the attainable rate at level l is ``min(peak, AI_l · BW_l)``; the
  kernel attains the minimum over levels, and the level that sets it binds (or ``compute``
  when every level's roof is above the peak).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

from memsim.errors import InputError

__all__ = ["Roofline", "RoofPoint", "HierarchicalRoofline", "roofline", "effective_peak",
           "hierarchical_roofline", "hardware_roofline"]


def _positive(kind: str, name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 \
            or math.isinf(value):
        raise InputError(f'{kind} "{name}" must be a finite number > 0, got {value!r}')
    return float(value)


def _work(kind: str, name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise InputError(f'{kind} "{name}" must be a number >= 0, got {value!r}')
    return float(value)


@dataclass(frozen=True)
class Roofline:
    """Roofline time of one kernel. ``bound`` is ``"compute"`` or ``"memory"``; ``resource``
    names the binding instruction class or memory level; ``compute_times_s`` and
    ``memory_times_s`` give every resource's busy time."""

    time_s: float
    bound: str
    resource: str
    compute_times_s: Mapping[str, float] = field(compare=True)
    memory_times_s: Mapping[str, float] = field(compare=True)


def roofline(*, flops: Mapping[str, float], rates: Mapping[str, float],
             bytes_by_level: Mapping[str, float],
             bandwidths: Mapping[str, float]) -> Roofline:
    """Per-resource roofline: ``time = max(max_c flops[c]/rates[c], max_l bytes[l]/bw[l])``.

    ``flops``: work per instruction class (e.g. ``{"tensor": 1.4e11, "sfu": 1e9}``), each with
    a rate in ``rates`` (FLOP/s). ``bytes_by_level``: bytes moved at each level (read + write),
    each with a bandwidth in ``bandwidths`` (bytes/s). Ties go to compute, then to the order
    of the mappings.
    """
    compute = {}
    for name, work in flops.items():
        work = _work("flops", name, work)
        if name not in rates:
            raise InputError(f'no rate for instruction class "{name}"; rates given for: '
                             f'{", ".join(rates) or "none"}')
        compute[name] = work / _positive("rate", name, rates[name])
    memory = {}
    for name, nbytes in bytes_by_level.items():
        nbytes = _work("bytes", name, nbytes)
        if name not in bandwidths:
            raise InputError(f'no bandwidth for memory level "{name}"; bandwidths given for: '
                             f'{", ".join(bandwidths) or "none"}')
        memory[name] = nbytes / _positive("bandwidth", name, bandwidths[name])
    if not compute and not memory:
        raise InputError("roofline needs at least one instruction class or memory level")
    candidates = [("compute", k, v) for k, v in compute.items()] + \
                 [("memory", k, v) for k, v in memory.items()]
    bound, resource, time_s = max(candidates, key=lambda t: t[2])  # first maximum wins
    return Roofline(time_s, bound, resource, compute, memory)


def effective_peak(flops: Mapping[str, float], rates: Mapping[str, float]) -> float:
    """Peak FLOP/s of an instruction mix whose classes run concurrently:
    ``sum(flops) / max_c(flops[c] / rates[c])`` (the compute part of :func:`roofline`)."""
    result = roofline(flops=flops, rates=rates, bytes_by_level={}, bandwidths={})
    total = sum(flops.values())
    if not total:
        raise InputError("effective_peak needs flops > 0 in some instruction class")
    return total / result.time_s


@dataclass(frozen=True)
class RoofPoint:
    """One memory level's roof: arithmetic intensity (FLOP/byte), ridge point
    (``peak / bandwidth``), attainable FLOP/s and whether that roof is memory- or
    compute-bound."""

    level: str
    bytes: float
    bandwidth: float
    arithmetic_intensity: float
    ridge_point: float
    attainable_flops_per_s: float
    bound: str


@dataclass(frozen=True)
class HierarchicalRoofline:
    """All roofs, the attainable FLOP/s (minimum over roofs), the binding level (``"compute"``
    when none is below the peak) and the implied time ``flops / attainable``."""

    points: tuple[RoofPoint, ...]
    peak_flops_per_s: float
    attainable_flops_per_s: float
    binding: str
    time_s: float


def hierarchical_roofline(*, flops: float, peak_flops_per_s: float,
                          bytes_by_level: Mapping[str, float],
                          bandwidths: Mapping[str, float]) -> HierarchicalRoofline:
    """Hierarchical roofline (one roof per memory level): for each level l,
    ``AI_l = flops / bytes_l`` and ``attainable_l = min(peak, AI_l · BW_l)``.
    A level that moves no bytes has infinite intensity (its roof is the peak)."""
    total = _work("flops", "total", flops)
    peak = _positive("peak", "flops_per_s", peak_flops_per_s)
    points = []
    for name, nbytes in bytes_by_level.items():
        nbytes = _work("bytes", name, nbytes)
        if name not in bandwidths:
            raise InputError(f'no bandwidth for memory level "{name}"; bandwidths given for: '
                             f'{", ".join(bandwidths) or "none"}')
        bw = _positive("bandwidth", name, bandwidths[name])
        ai = total / nbytes if nbytes else math.inf
        roof = ai * bw
        bound = "memory" if roof < peak else "compute"
        points.append(RoofPoint(name, nbytes, bw, ai, peak / bw, min(peak, roof), bound))
    attainable = min([p.attainable_flops_per_s for p in points], default=peak)
    binding = "compute"
    for p in points:  # the lowest memory roof binds; first one on ties
        if p.bound == "memory" and p.attainable_flops_per_s == attainable:
            binding = p.level
            break
    time_s = total / attainable
    return HierarchicalRoofline(tuple(points), peak, attainable, binding, time_s)


def hardware_roofline(hardware, *, flops: Mapping[str, float],
                      bytes_by_level: Mapping[str, float], achievable: bool = True) -> Roofline:
    """:func:`roofline` with rates and bandwidths taken from a ``memsim.hardware.Hardware``:
    each instruction class by ``hardware.find_rate(name)`` (its achievable rate where measured
    and ``achievable`` is true, else the peak), each level's aggregate ``read_bandwidth``
    (reads and writes of a level share its bandwidth here)."""
    rates = {}
    for name in flops:
        rate = hardware.find_rate(name)[1]
        rates[name] = rate.effective if achievable else rate.peak
    bandwidths = {name: hardware.memory(name).read_bandwidth for name in bytes_by_level}
    return roofline(flops=flops, rates=rates, bytes_by_level=bytes_by_level,
                    bandwidths=bandwidths)
