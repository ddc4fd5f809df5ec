"""A streaming dataflow fabric: units joined by bounded FIFOs, run on one simpy environment.

    fabric = Fabric(hardware.fabric)
    s = fabric.channel("qk->exp", token_elements=lanes)
    fabric.add(Map(fabric.env, "exp", fabric.timing("exp"), lanes, np.exp, [s], [p]))
    run = fabric.run()            # FabricRun, or DeadlockError

Time is in cycles of ``clock_hz``. By default each unit keeps a local clock (as in DAM) and uses
simpy only to wait for a token or a credit that another unit has yet to produce; ``mode=
"clocked"`` makes simpy's time the cycle instead (one event per firing) and is the reference the
default is tested against. A run ends when simpy has no event left. If then every sink has its
results, the run succeeded; otherwise every live unit is blocked on a full or
an empty FIFO and nothing can ever move again: a deadlock, reported with the channels and the
units that wait on them, and the cycle of waits that closes it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from math import inf

import simpy

from ..errors import InputError, ScheduleError
from ..hardware.model import FabricSpec
from .channel import Channel
from .units import GET, PUT, Sink, Source, Unit, UnitTiming

__all__ = ["Fabric", "FabricRun", "DeadlockError", "DEFAULT_TIMING"]

DEFAULT_TIMING = UnitTiming(initiation_interval=1, latency=1, width=1 << 30)
"""Timing of unit kinds a fabric spec does not describe (sources and sinks by default):
one token per cycle, any width."""


class DeadlockError(ScheduleError):
    """No unit can make progress: all are blocked on full or empty FIFOs.

    ``full`` / ``empty``: ``{channel: unit waiting on it}``; ``waits``: ``{unit: (op, channel)}``
    with op ``"put"`` (channel full) or ``"get"`` (channel empty); ``wait_cycle``: the units of
    a cycle of waits (each waits on the next); ``blocking_channels``: the full channels on that
    cycle, the FIFOs whose depth is too small.
    """

    def __init__(self, message: str, *, cycle: int, full: dict, empty: dict, waits: dict,
                 wait_cycle: list, blocking_channels: list):
        super().__init__(message)
        self.cycle = cycle
        self.full = full
        self.empty = empty
        self.waits = waits
        self.wait_cycle = wait_cycle
        self.blocking_channels = blocking_channels


@dataclass
class FabricRun:
    """Outcome of a fabric run: cycles, per-channel and per-unit statistics, sink values."""

    cycles: int
    clock_hz: float
    channels: dict
    units: dict
    outputs: dict = field(repr=False)
    events: int = 0             # simpy events the units waited on

    @property
    def time_s(self) -> float:
        return self.cycles / self.clock_hz

    def intermediate_peak_elements(self) -> int:
        """Sum over FIFOs between compute units of their peak occupancy (elements)."""
        return sum(c["peak_elements"] for c in self.channels.values() if c["intermediate"])


class Fabric:
    """Builds and runs a dataflow graph on a ``FabricSpec`` (unit kinds, channel defaults)."""

    def __init__(self, spec: FabricSpec | None = None):
        self.spec = spec
        self.env = simpy.Environment()
        self.channels: dict[str, Channel] = {}
        self.units: dict[str, Unit] = {}
        self.clock_hz = spec.clock_hz if spec else 1e9

    # -- building ----------------------------------------------------------------------------
    def timing(self, kind: str) -> UnitTiming:
        """Timing of the fabric's unit of ``kind`` (or of the unit named ``kind``)."""
        units = self.spec.units if self.spec else {}
        unit = units.get(kind) or next((u for u in units.values() if u.kind == kind), None)
        if unit is None:
            if kind in ("source", "sink"):
                return DEFAULT_TIMING
            known = sorted({u.kind for u in units.values()})
            raise InputError(f"the fabric has no unit of kind {kind!r}, expected one of: "
                             f"{', '.join(known) or '(none)'}")
        return UnitTiming(unit.initiation_interval, unit.latency_cycles, unit.width)

    def channel(self, name: str, token_elements: int, depth: int | None = None,
                width: int | None = None, latency: int | None = None,
                intermediate: bool = True, slack: int = 0) -> Channel:
        """A FIFO; width defaults to one token per cycle, latency to the fabric's channel spec.

        Without an explicit ``depth`` the channel is sized like a compiler would: at least the
        spec's default depth, and at least its producer's round trip (unit latency + transfer +
        channel latency) plus ``slack`` (the skew of a join it feeds), so that it never
        throttles a fully pipelined producer. An explicit depth is taken as given."""
        if name in self.channels:
            raise ValueError(f"duplicate channel name {name!r}")
        defaults = self.spec.channel if self.spec else None
        auto = depth is None
        depth = depth if depth is not None else (defaults.depth if defaults else 2)
        latency = latency if latency is not None else (defaults.latency_cycles if defaults else 1)
        width = width if width is not None else token_elements
        if depth < 1:
            raise InputError(f"channel {name!r}: depth {depth} must be at least 1 entry")
        ch = Channel(self.env, name, depth, width, latency, token_elements, intermediate)
        ch.auto_depth, ch.slack = auto, slack
        self.channels[name] = ch
        return ch

    def add(self, unit: Unit) -> Unit:
        """Register a unit; checks unique names, pipeline latency and the fabric's unit counts."""
        if unit.name in self.units:
            raise ValueError(f"duplicate unit name {unit.name!r}")
        for chs, _ in unit.outputs:
            for ch in chs:
                if unit.latency + ch.latency < 1:
                    raise InputError(f"unit {unit.name!r} -> channel {ch.name!r}: latency "
                                     f"{unit.latency} + {ch.latency} cycles, expected >= 1 "
                                     f"(a result cannot be used in the cycle it is made)")
                if ch.auto_depth:
                    round_trip = unit.latency + ch.transfer_cycles - 1 + ch.latency
                    ch.depth = max(ch.depth, round_trip + ch.slack + 1)
        self.units[unit.name] = unit
        if self.spec:
            spec_unit = next((u for u in self.spec.units.values() if u.kind == unit.kind), None)
            used = sum(1 for u in self.units.values() if u.kind == unit.kind)
            if spec_unit is not None and spec_unit.count is not None and used > spec_unit.count:
                raise ScheduleError(f"the program needs {used} units of kind {unit.kind!r}, "
                                    f"the fabric has {spec_unit.count}")
        return unit

    # -- running -----------------------------------------------------------------------------
    def run(self, max_cycles: int | None = None, mode: str = "local") -> FabricRun:
        """Run to completion. Raises ``DeadlockError`` if the graph stops before every sink has
        its results, ``InputError`` if ``max_cycles`` pass first.

        ``mode="local"``: each unit keeps its own clock and runs ahead until it needs a token
        or a credit that does not exist yet (few simpy events); ``mode="clocked"``: simpy's
        time is the cycle and every unit sleeps until it may fire (one event per firing). Both
        give the same cycles, values and peaks (tested)."""
        if mode not in ("local", "clocked"):
            raise ValueError(f"mode {mode!r}, expected 'local' or 'clocked'")
        local = mode == "local"
        for channel in self.channels.values():
            channel.reset()
        for unit in self.units.values():
            if max_cycles is not None:
                unit.max_cycles = max_cycles
            self.env.process(unit.run(local))
        self.env.run(until=None if local else max_cycles)
        for channel in self.channels.values():
            channel.finish()
        sinks = [u for u in self.units.values() if isinstance(u, Sink)]
        if not all(s.done for s in sinks):
            if any(u.stopped for u in self.units.values()) or self.env.peek() != inf:
                raise InputError(f"the dataflow program did not finish within {max_cycles} "
                                 f"cycles (max_cycles)")
            raise self._deadlock()
        cycles = max((s.finish_cycle or 0) for s in sinks) if sinks else int(self.env.now)
        return FabricRun(
            cycles=int(cycles), clock_hz=self.clock_hz,
            channels={name: ch.stats() for name, ch in self.channels.items()},
            units={name: {"kind": u.kind, "firings": u.firings, "cycles_per_firing": u.cycles,
                          "latency_cycles": u.latency} for name, u in self.units.items()},
            outputs={s.name: s.values for s in sinks},
            events=sum(u.events for u in self.units.values()))

    def _deadlock(self) -> DeadlockError:
        now = int(max([self.env.now] + [u.now for u in self.units.values()]))
        waits = {u.name: (u.waiting[0], u.waiting[1].name) for u in self.units.values()
                 if not u.done and u.waiting is not None}
        full = {ch: unit for unit, (op, ch) in waits.items() if op == PUT}
        empty = {ch: unit for unit, (op, ch) in waits.items() if op == GET}
        # Each blocked unit waits on exactly one other unit (the other end of its channel), so
        # following the waits from any unit ends in a cycle or in a finished unit.
        def waits_on(unit: str) -> str | None:
            if unit not in waits:
                return None
            op, ch = waits[unit]
            channel = self.channels[ch]
            return channel.consumer if op == PUT else channel.producer

        wait_cycle: list[str] = []
        for start in waits:
            path, unit = [], start
            while unit is not None and unit not in path:
                path.append(unit)
                unit = waits_on(unit)
            if unit is not None:
                wait_cycle = path[path.index(unit):]
                break
        blocking = [waits[u][1] for u in wait_cycle if waits[u][0] == PUT]

        def describe(ch: str, unit: str, op: str) -> str:
            c = self.channels[ch]
            state = f"{c.entries}/{c.depth} entries, {c.elements} elements"
            return f"{ch} ({state}; {unit} waits to {op})"

        parts = [f"dataflow deadlock at cycle {now}: no unit can make progress"]
        if wait_cycle:
            parts.append("wait cycle " + " -> ".join(wait_cycle + wait_cycle[:1])
                         + (f"; too shallow: {', '.join(blocking)}" if blocking else ""))
        parts.append("full: " + (", ".join(describe(ch, u, PUT) for ch, u in full.items())
                                 or "(none)"))
        parts.append("empty: " + (", ".join(describe(ch, u, GET) for ch, u in empty.items())
                                  or "(none)"))
        starved = [u.name for u in self.units.values() if isinstance(u, Source) and u.done]
        if starved and not wait_cycle:
            parts.append(f"sources exhausted: {', '.join(starved)}")
        return DeadlockError("; ".join(parts), cycle=now, full=full, empty=empty, waits=waits,
                             wait_cycle=wait_cycle, blocking_channels=blocking)
