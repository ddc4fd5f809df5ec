"""The discrete-event engine: executes a tile program on a GPU model and counts bytes.

    from memsim.engine import simulate_program
    er = simulate_program(hw, schedule.kernels(), granularity="tile", trace=False)
    er.time_s, er.levels["hbm"].read_bytes, er.flops_by_class, er.kernels, er.busy_s

Bytes are counted by the traffic pass (:mod:`.trafficpass`, numba) over the program in the
canonical wave-lockstep order; time by simpy (:mod:`.gpu`) at tile granularity (one event per
step, the reference), by the same model in numba at block granularity (:mod:`.stepsim`: one
event per step without simpy; kernel times equal the tile level's), or by a per-block closed
form at wave granularity (one event per thread block; fast, approximate: errors in
docs/schedules.md). Byte counts do not depend on the granularity.
"""
from __future__ import annotations

import math
import time as _time
from dataclasses import dataclass, field
from typing import Mapping


from ..errors import InputError
from .gpu import occupancy, run_block, run_tile
from .stepsim import run_step
from .program import Access, Kernel, Op, Program, Segment, TensorSpace
from .trafficpass import operand_bytes, pack, run_pass

__all__ = ["simulate_program", "EngineResult", "LevelCounters", "KernelTiming", "TraceEvent",
           "Kernel", "Segment", "Access", "Op", "Program", "TensorSpace", "occupancy",
           "GRANULARITIES", "DIRTY_TENSOR"]

GRANULARITIES = ("tile", "block", "wave")
DIRTY_TENSOR = "l2_dirty_at_start"
"""Result tensor entry of the write-back of data dirty in L2 before the program starts."""


def _whole(x: float):
    return int(x) if float(x).is_integer() else float(x)


@dataclass(frozen=True)
class LevelCounters:
    """Bytes read from / written into one level, and its peak occupancy (per instance for
    ``sram``; resident bytes for ``l2``; distinct bytes touched for ``hbm``)."""

    read_bytes: int | float
    write_bytes: int | float
    peak_bytes: int | float


@dataclass(frozen=True)
class KernelTiming:
    """One kernel: grid, blocks per SM, waves, start and end (s, from the run's start)."""

    name: str
    grid: int
    blocks_per_sm: int
    waves: float
    start_s: float
    end_s: float

    @property
    def time_s(self) -> float:
        return self.end_s - self.start_s

    def to_dict(self) -> dict:
        return {"name": self.name, "grid": self.grid, "blocks_per_sm": self.blocks_per_sm,
                "waves": self.waves, "start_s": self.start_s, "end_s": self.end_s,
                "time_s": self.time_s}


@dataclass(frozen=True)
class TraceEvent:
    """One busy interval: ``resource`` is ``load``/``store`` (``bytes`` through L2, ``hbm_bytes``
    from/to HBM) or a compute unit (``bytes`` = seconds of work there)."""

    start: float
    end: float
    resource: str
    bytes: float
    hbm_bytes: float
    kernel: str
    block: int
    sm: int

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass(frozen=True)
class EngineResult:
    """What one simulated program did. ``levels``: ``sram``, ``l2``, ``hbm``
    (:class:`LevelCounters`); ``tensors``: per tensor class ``{l2_read, l2_write, hbm_read,
    hbm_write}`` bytes; ``flops_by_class``: operations per instruction class; ``flops``: all
    classes except exponentials; ``busy_s``: busy seconds per channel / unit kind."""

    time_s: float
    levels: Mapping[str, LevelCounters]
    flops_by_class: Mapping[str, float]
    flops: float
    exps: float
    kernels: tuple
    busy_s: Mapping[str, float]
    tensors: Mapping[str, Mapping[str, float]]
    granularity: str
    events: int
    wall_s: float
    trace: tuple | None = field(default=None, repr=False)
    kernel_end_writeback: float = 0.0   # HBM writes that drain dirty L2 data at kernel ends
    dirty_writeback: float = 0.0        # write-back of the data dirty in L2 at the start


def _classes(hw, classes):
    """Compute unit of each instruction class and its per-SM rate."""
    units, cls_unit, cls_rate = [], [], []
    for name in classes:
        unit, rate = hw.find_rate(name)
        if unit.name not in units:
            units.append(unit.name)
        cls_unit.append(units.index(unit.name))
        cls_rate.append(rate.effective / hw.gpu.sms)
    return units, cls_unit, cls_rate


def simulate_program(hardware, kernels, *, granularity: str = "tile",
                     trace: bool = False, l2_dirty_bytes: float | None = None) -> EngineResult:
    """Execute ``kernels`` (a schedule's program) on ``hardware`` (a GPU with ``sram``,
    ``l2`` and ``hbm`` levels). ``granularity``: ``"tile"`` (reference: simpy, one event per
    step), ``"block"`` (the tile model in numba: same bytes, same time) or ``"wave"`` (one
    event per thread block: same bytes, time within the errors measured in docs/schedules.md,
    Engine model).
    ``trace`` keeps the busy intervals (tile mode only). ``l2_dirty_bytes``: None, L2 starts
    empty (cold); a number, L2 starts full of other data, that many bytes of it dirty (what a
    benchmark's L2 flush, or a previous workload, leaves): evicted first, the dirty part is
    written back to HBM, which takes HBM time (tensor ``l2_dirty_at_start`` of the result)."""
    t0 = _time.perf_counter()
    if granularity not in GRANULARITIES:
        raise InputError(f'"granularity" must be one of {", ".join(GRANULARITIES)}, '
                         f"got {granularity!r}")
    kernels = list(kernels)
    if not kernels:
        raise InputError("the program has no kernels")
    if hardware.gpu is None:
        raise InputError(f"hardware {hardware.name!r} has no 'gpu' section; the tile engine "
                         "needs SMs, blocks per SM and a launch overhead")
    program = kernels[0].program
    if any(k.program is not program for k in kernels):
        raise ValueError("all kernels of a program must share one Program (region ids)")
    occ = [occupancy(hardware, k) for k in kernels]     # raises CapacityError early
    packed = pack(kernels)
    units, cls_unit, cls_rate = _classes(hardware, packed.classes)
    slots = [max(1, o * hardware.gpu.sms) for o in occ]
    tile = granularity == "tile"
    pr = run_pass(packed, slots, cls_unit or [0], cls_rate or [1.0], program.n_regions,
                  len(program.tensor_names), max(1, len(units)),
                  hardware.memory("l2").lru_capacity_bytes, tile, sparse=granularity == "block",
                  l2_dirty_bytes=l2_dirty_bytes)
    units = units or ["none"]
    if tile:
        end, ktimes, machine, events = run_tile(hardware, kernels, packed, pr, units, trace)
    elif granularity == "block":
        end, ktimes, machine, events = run_step(hardware, kernels, packed, pr, units,
                                                cls_unit or [0], cls_rate or [1.0])
    else:
        end, ktimes, machine, events = run_block(hardware, kernels, packed, pr, units)
    loads, stores = float(pr.tensor_l2_read.sum()), float(pr.tensor_l2_write.sum())
    # sram (docs/schedules.md, Engine model): compute reads its operands out of SRAM and
    # writes its results into it; loads fill it from L2 and stores drain it into L2.
    opd = operand_bytes(packed, len(program.tensor_names))
    levels = {
        "sram": LevelCounters(_whole(float(opd.sum()) + stores), _whole(loads + stores),
                              _whole(machine.sram.peak_bytes)),
        "l2": LevelCounters(_whole(loads), _whole(stores), _whole(pr.l2_peak)),
        "hbm": LevelCounters(_whole(pr.tensor_hbm_read.sum()),
                             _whole(pr.tensor_hbm_write.sum() + pr.dirty_writeback),
                             _whole(pr.footprint)),
    }
    flops_by_class = {c: _whole(v) for c, v in zip(packed.classes, pr.class_ops.tolist())}
    exps = sum(v for c, v in flops_by_class.items() if c.startswith("exp"))
    flops = sum(v for c, v in flops_by_class.items() if not c.startswith("exp"))
    tensors = {name: {"sram_read": _whole(opd[i] + pr.tensor_l2_write[i]),
                      "l2_read": _whole(pr.tensor_l2_read[i]),
                      "l2_write": _whole(pr.tensor_l2_write[i]),
                      "hbm_read": _whole(pr.tensor_hbm_read[i]),
                      "hbm_write": _whole(pr.tensor_hbm_write[i])}
               for i, name in enumerate(program.tensor_names)}
    if l2_dirty_bytes is not None:
        tensors[DIRTY_TENSOR] = {"sram_read": 0, "l2_read": 0, "l2_write": 0, "hbm_read": 0,
                                 "hbm_write": _whole(pr.dirty_writeback)}
    sms = hardware.gpu.sms
    ktuple = tuple(KernelTiming(name, grid, o, math.ceil(grid / (o * sms) * 100) / 100, s, e)
                   for (name, grid, o, s, e) in ktimes)
    tr = None
    if trace and machine.trace is not None:
        tr = tuple(TraceEvent(*e) for e in machine.trace)
    return EngineResult(end, levels, flops_by_class, flops, exps, ktuple, machine.busy(),
                        tensors, granularity, events, _time.perf_counter() - t0, tr,
                        float(pr.kernel_flush.sum()), float(pr.dirty_writeback))
