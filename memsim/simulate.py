"""``memsim.simulate(config) -> Result``: the library entry point behind ``memsim run``.

For tile-program workloads (attention, gemm) a run is: the schedule emits its kernels, the
engine executes them and counts bytes per level, and the result is put next to two independent
references from :mod:`memsim.bounds`: the roofline (which resource binds) and the I/O lower
bound at the SRAM boundary (``lower_bound.level = "l2"``: the bytes the SMs read from and
write into L2, i.e. ``l2.read_bytes + l2.write_bytes``).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable, Mapping

from . import __version__
from .config import RunConfig, load_run_config
from .result import LevelTraffic, LowerBound, Result, Roofline

__all__ = ["simulate", "simulate_tiled", "check_result_numerics", "level_traffic", "roofline_of",
           "lower_bound_of"]

LOWER_BOUND_LEVEL = "l2"
"""The level whose traffic the I/O lower bound is about: the SRAM boundary (SMs <-> L2)."""


def simulate(config: "str | Path | Mapping | RunConfig",
             overrides: Iterable[tuple[str, Any]] = (), *, check_numerics: bool = False,
             numerics_max_elements: int = 2**22) -> Result:
    """Simulate one run configuration (a YAML path, plain data, or a RunConfig).

    ``overrides`` are ``("workload.batch", 8)`` pairs, as ``--set`` on the command line.
    ``check_numerics`` also runs the schedule's tiling on real numbers (see
    :func:`check_result_numerics`).
    """
    from .workloads import get_workload_kind
    cfg = load_run_config(config, overrides)
    result = get_workload_kind(cfg.workload_kind).simulate(cfg)
    if check_numerics:
        result = check_result_numerics(cfg, result, max_elements=numerics_max_elements)
    return result


def check_result_numerics(cfg: RunConfig, result: Result, *, max_elements: int = 2**22,
                          seed: int = 0) -> Result:
    """Run the numba numerics of the run's attention schedule, with the resolved block sizes,
    on seeded random inputs of the configured shape (or a scaled-down shape the result states
    when ``batch·heads·seq_q·seq_k > max_elements``) and add the error to ``result.numerics``.
    """
    import dataclasses

    from .errors import InputError
    if cfg.workload_kind != "attention":
        raise InputError(f"--check-numerics applies to attention workloads, not "
                         f"{cfg.workload_kind!r}")
    from .numerics import check_numerics
    report = check_numerics(cfg.workload, dict(result.schedule), max_elements=max_elements,
                            seed=seed)
    return dataclasses.replace(result, numerics=report)


def simulate_tiled(cfg: RunConfig) -> Result:
    """Simulate a workload whose schedule emits a tile program (attention, gemm)."""
    from .engine import simulate_program
    kernels = cfg.schedule.kernels()
    er = simulate_program(cfg.hardware, kernels, granularity=cfg.granularity, trace=cfg.trace,
                          l2_dirty_bytes=cfg.l2_dirty_bytes)
    levels = level_traffic(cfg.hardware, er)
    flops_by_class = {str(k): v for k, v in _get(er, "flops_by_class", {}).items()}
    flops = _get(er, "flops", None)
    if flops is None:
        flops = sum(flops_by_class.values())
    kernels_out = tuple(_kernel_record(k) for k in _get(er, "kernels", ()))
    trace = _get(er, "trace", None) if cfg.trace else None
    return Result(
        memsim_version=__version__,
        hardware=cfg.hardware_name,
        workload=cfg.workload.to_dict(),
        schedule=dict(cfg.schedule.resolved()),
        time_s=float(_get(er, "time_s")),
        flops=flops,
        levels=levels,
        roofline=roofline_of(cfg.hardware, flops_by_class, levels),
        lower_bound=lower_bound_of(cfg, levels),
        useful_flops=getattr(cfg.workload, "flops", None),
        kernels=kernels_out,
        flops_by_class=flops_by_class,
        busy_s=dict(_get(er, "busy_s", {}) or {}),
        trace=tuple(_event_record(e) for e in trace) if trace is not None else None,
        simulation={"granularity": cfg.granularity, "events": _get(er, "events", None),
                    "wall_s": _get(er, "wall_s", None), **_l2_start(cfg, er)},
    )


def _l2_start(cfg: RunConfig, er) -> dict:
    """The L2 state at the start, when the run configuration sets one."""
    if cfg.l2_dirty_bytes is None:
        return {}
    return {"l2_dirty_at_start": cfg.l2_dirty_bytes,
            "l2_dirty_writeback": _get(er, "dirty_writeback", 0.0)}


# -- adapters over the engine's result ----------------------------------------------------------

def _get(obj: Any, name: str, *default: Any) -> Any:
    if isinstance(obj, Mapping):
        return obj[name] if name in obj or not default else obj.get(name, default[0])
    return getattr(obj, name, *default)


def _record(obj: Any) -> dict:
    if isinstance(obj, Mapping):
        return dict(obj)
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if hasattr(obj, "__dataclass_fields__"):
        return {k: getattr(obj, k) for k in obj.__dataclass_fields__}
    return dict(vars(obj))


def _kernel_record(kernel: Any) -> dict:
    return _record(kernel)


def _event_record(event: Any) -> dict:
    return _record(event)


def level_traffic(hardware: Any, engine_result: Any) -> dict[str, LevelTraffic]:
    """Per-level bytes of an engine result as :class:`LevelTraffic`, for every memory level of
    the hardware (a level the run never touched reports zeros). ``capacity_bytes`` is the
    capacity of all instances together."""
    counted = _get(engine_result, "levels")
    out = {}
    for level in hardware.memories:
        c = counted.get(level.name) if isinstance(counted, Mapping) else None
        out[level.name] = LevelTraffic(
            read_bytes=_get(c, "read_bytes", 0) if c is not None else 0,
            write_bytes=_get(c, "write_bytes", 0) if c is not None else 0,
            peak_bytes=_get(c, "peak_bytes", 0) if c is not None else 0,
            capacity_bytes=level.total_capacity_bytes)
    return out


def roofline_of(hardware: Any, flops_by_class: Mapping[str, float],
                levels: Mapping[str, LevelTraffic]) -> Roofline | None:
    """Per-resource roofline (memsim.bounds.roofline) of the simulated work: every instruction
    class at its effective rate, every level's read + write bytes at its bandwidth."""
    from .bounds import roofline
    rates = {name: hardware.find_rate(name)[1].effective for name in flops_by_class}
    moved = {}
    bandwidths = {}
    for name, t in levels.items():
        if not (t.read_bytes or t.write_bytes):
            continue
        level = hardware.memory(name)
        # Reads and writes share the level: its time is r/BW_r + w/BW_w, expressed as one
        # effective bandwidth for the total.
        seconds = t.read_bytes / level.read_bandwidth + t.write_bytes / level.write_bandwidth
        moved[name] = t.read_bytes + t.write_bytes
        bandwidths[name] = moved[name] / seconds
    if not moved and not any(flops_by_class.values()):
        return None
    r = roofline(flops={k: v for k, v in flops_by_class.items() if v}, rates=rates,
                 bytes_by_level=moved, bandwidths=bandwidths)
    bound = "compute" if r.bound == "compute" else r.resource
    times = {**dict(r.compute_times_s), **dict(r.memory_times_s)}
    return Roofline(r.time_s, bound, r.resource, times)


def _sram_bytes_per_block(hardware: Any) -> float:
    sram = hardware.memory("sram")
    return sram.max_per_block_bytes or sram.capacity_bytes


def lower_bound_of(cfg: RunConfig, levels: Mapping[str, LevelTraffic]) -> LowerBound | None:
    """I/O lower bound at the SRAM boundary (memsim.bounds) and simulated ÷ bound, for
    attention and gemm workloads on hardware with ``sram`` and ``l2`` levels."""
    from .bounds import attention_lower_bound, matmul_lower_bound
    hw, wl = cfg.hardware, cfg.workload
    if not (hw.has_memory("sram") and LOWER_BOUND_LEVEL in levels):
        return None
    sram_bytes = _sram_bytes_per_block(hw)
    if cfg.workload_kind == "attention":
        from .dtypes import dtype_bytes
        inter = cfg.schedule.resolved().get("intermediate_dtype")
        lb = attention_lower_bound(
            seq_q=wl.seq_q, seq_k=wl.seq_k, head_dim=wl.head_dim, dtype_bytes=wl.dtype_bytes,
            sram_bytes=sram_bytes, batch=wl.batch, heads=wl.heads, kv_heads=wl.kv_heads,
            causal=wl.causal, window=wl.window, sparse=wl.sparse,
            intermediate_bytes=dtype_bytes(inter) if inter else None)
    elif cfg.workload_kind == "gemm":
        quant = {} if not getattr(wl, "quantized", False) else dict(  # (weight-quantized B)
            b_dtype_bytes=wl.b_dtype_bytes, group_size=wl.b_group_size,
            group_bytes=wl.b_group_bytes)
        lb = matmul_lower_bound(wl.m, wl.n, wl.k, wl.dtype_bytes, sram_bytes, **quant)
    else:
        return None
    t = levels[LOWER_BOUND_LEVEL]
    moved = t.read_bytes + t.write_bytes
    ratio = moved / lb.io_bytes if lb.io_bytes > 0 else math.inf
    return LowerBound(LOWER_BOUND_LEVEL, lb.io_bytes, ratio, lb.formula)
