"""Processing units of a streaming dataflow fabric, each a simpy process.

A unit *fires* at most once every ``cycles`` cycles (its initiation interval times the number of
passes a token needs through its ``width`` lanes, and no faster than its channels can carry a
token). A firing waits until every input it consumes has a ready token and every output it
produces has a free entry, then pops and pushes in the same cycle; its results become visible
``latency`` cycles later (plus the channel's own latency). Values are real numbers (numpy), so a
run checks the numerics and the timing together.

Streams are organised in *rows* of ``row_length`` firings (one query row of SDPA). A port is
consumed on ``EACH`` firing or only on the ``FIRST`` firing of a row (a stationary operand); an
output is produced on ``EACH`` firing or only on the ``LAST`` firing of a row (a reduction).
"""
from __future__ import annotations

from dataclasses import dataclass
from math import ceil
from typing import Callable, Iterable

from .channel import Channel

__all__ = ["UnitTiming", "Unit", "Map", "Reduce", "Scan", "MatVec", "Repeat", "Source", "Sink",
           "EACH", "FIRST", "LAST"]

EACH, FIRST, LAST = "each", "first", "last"
GET, PUT = "get", "put"


@dataclass(frozen=True)
class UnitTiming:
    """Initiation interval (cycles between firings at full width), pipeline latency (cycles),
    width (lanes processed per pass)."""

    initiation_interval: int = 1
    latency: int = 1
    width: int = 1


class Unit:
    """Base class: the firing loop. Subclasses define ``fire(values, first, last)``.

    ``inputs``: list of ``(channel, EACH|FIRST)``; ``outputs``: list of
    ``(channels, EACH|LAST)`` where one output port may fan out to several channels (a fork:
    the firing waits until all of them have room).
    """

    kind = "unit"

    def __init__(self, env, name: str, timing: UnitTiming, lanes: int, row_length: int = 1,
                 inputs: Iterable = (), outputs: Iterable = ()):
        self.env = env
        self.name = name
        self.timing = timing
        self.lanes = lanes
        self.row_length = row_length
        self.inputs = [(ch, mode) for ch, mode in inputs]
        self.outputs = [(list(chs), mode) for chs, mode in outputs]
        for ch, _ in self.inputs:
            if ch.consumer is not None:
                raise ValueError(f"channel {ch.name!r} already has consumer {ch.consumer!r}")
            ch.consumer = name
        for chs, _ in self.outputs:
            for ch in chs:
                if ch.producer is not None:
                    raise ValueError(f"channel {ch.name!r} already has producer {ch.producer!r}")
                ch.producer = name
        passes = ceil(lanes / timing.width)
        transfer = max([ch.transfer_cycles for ch, _ in self.inputs]
                       + [ch.transfer_cycles for chs, _ in self.outputs for ch in chs] + [1])
        self.cycles = max(timing.initiation_interval * passes, transfer)
        self.latency = timing.latency
        # Precomputed port plans for the first / middle / last firing of a row.
        self._plans = {}
        for first in (False, True):
            for last in (False, True):
                ins = [ch for ch, mode in self.inputs if mode == EACH or first]
                outs = [chs for chs, mode in self.outputs if mode == EACH or last]
                self._plans[first, last] = (ins, outs, [ch for chs in outs for ch in chs])
        self.k = 0                  # firing index within the row
        self.firings = 0
        self.events = 0             # simpy events this unit waited on (for events/s figures)
        self.next_fire = 0
        self.now = 0                # cycle of the latest firing
        self.max_cycles = float("inf")
        self.stopped = False        # returned at max_cycles
        self.waiting: tuple[str, Channel] | None = None
        self.done = False

    def fire(self, values: list, first: bool, last: bool) -> list:
        raise NotImplementedError

    def _fire_at(self, now, ins, outs, first: bool, last: bool) -> None:
        """Fire at cycle ``now``: pop one token per input, push the results (after the unit's
        latency) and advance the row position and the next allowed firing cycle."""
        self.now = now
        results = self.fire([ch.pop(now) for ch in ins], first, last)
        latency = self.latency
        for chs, value in zip(outs, results):
            for ch in chs:
                ch.push(value, now, latency)
        self.firings += 1
        self.k = 0 if last else self.k + 1
        self.next_fire = now + self.cycles

    def run(self, local: bool = True):
        """The simpy process: fire forever (the fabric stops when nothing can move)."""
        return self._run_local() if local else self._run_clocked()

    def _run_local(self):
        # Local clock (as in DAM): the unit fires at the earliest cycle its constraints allow:
        # its initiation interval, its inputs' ready cycles, its outputs' credits. It waits
        # (yields to simpy) only when a token or a credit does not exist yet, i.e. when
        # another unit has to run first; so it may run ahead of the others.
        last_k = self.row_length - 1
        plans = self._plans
        while True:
            first, last = self.k == 0, self.k == last_k
            ins, outs, out_channels = plans[first, last]
            now = self.next_fire
            for ch in ins:
                while not ch.items:
                    self.waiting = (GET, ch)
                    self.events += 1
                    yield ch.wait_data()
                ready = ch.items[0][0]
                if ready > now:
                    now = ready
            for ch in out_channels:
                while not ch.credits:
                    self.waiting = (PUT, ch)
                    self.events += 1
                    yield ch.wait_space()
                free = ch.credits[0]
                if free > now:
                    now = free
            self.waiting = None
            if now > self.max_cycles:
                self.stopped = True
                return
            self._fire_at(now, ins, outs, first, last)

    def _run_clocked(self):
        # Global clock: simpy's time is the cycle; the unit sleeps until it may fire. One simpy
        # event per firing at least; the reference the local-clock mode is tested against.
        env = self.env
        last_k = self.row_length - 1
        plans = self._plans
        while True:
            if env.now < self.next_fire:
                self.events += 1
                yield env.timeout(self.next_fire - env.now)
            first, last = self.k == 0, self.k == last_k
            ins, outs, out_channels = plans[first, last]
            for ch in ins:
                while True:
                    items = ch.items
                    if items:
                        wait = items[0][0] - env.now
                        if wait <= 0:
                            break
                        self.events += 1
                        yield env.timeout(wait)
                    else:
                        self.waiting = (GET, ch)
                        self.events += 1
                        yield ch.wait_data()
            for ch in out_channels:
                while not ch.credits:
                    self.waiting = (PUT, ch)
                    self.events += 1
                    yield ch.wait_space()
            self.waiting = None
            self._fire_at(env.now, ins, outs, first, last)


class Map(Unit):
    """Elementwise function of one token from each input (exp, divide, subtract ...)."""

    kind = "map"

    def __init__(self, env, name, timing, lanes, fn: Callable, inputs, outputs, kind="map"):
        super().__init__(env, name, timing, lanes, 1, [(ch, EACH) for ch in inputs],
                         [(outputs, EACH)])
        self.fn = fn
        self.kind = kind

    def fire(self, values, first, last):
        return [self.fn(*values)]


class Reduce(Unit):
    """Folds a row of tokens into one value, emitted on the row's last firing.

    ``step(acc, *values) -> acc`` with ``acc`` starting at ``init()`` each row; the emitted
    value is ``finish(acc)``.
    """

    kind = "reduce"

    def __init__(self, env, name, timing, lanes, row_length, step: Callable, init: Callable,
                 inputs, outputs, finish: Callable | None = None, kind="reduce", modes=None):
        modes = modes or [EACH] * len(inputs)
        super().__init__(env, name, timing, lanes, row_length, list(zip(inputs, modes)),
                         [(outputs, LAST)])
        self.step, self.init, self.finish = step, init, finish
        self.kind = kind
        self.acc = None

    def fire(self, values, first, last):
        acc = self.step(self.init() if first else self.acc, *values)
        if last:
            self.acc = None
            return [self.finish(acc) if self.finish else acc]
        self.acc = acc
        return []


class Scan(Unit):
    """Running fold: emits ``emit(prev, acc)`` on every firing, resetting each row."""

    kind = "scan"

    def __init__(self, env, name, timing, lanes, row_length, step: Callable, init: Callable,
                 emit: Callable, inputs, outputs):
        super().__init__(env, name, timing, lanes, row_length, [(ch, EACH) for ch in inputs],
                         [(outputs, EACH)])
        self.step, self.init, self.emit = step, init, emit
        self.acc = None

    def fire(self, values, first, last):
        prev = self.init() if first else self.acc
        self.acc = acc = self.step(prev, *values)
        return [self.emit(prev, acc)]


class MatVec(Unit):
    """Matrix-vector product with a stationary vector loaded once per row: each firing takes a
    block of rows (``lanes`` x d) and emits ``scale * block @ vector`` (``lanes`` values)."""

    kind = "matvec"

    def __init__(self, env, name, timing, lanes, row_length, vector_in, block_in, outputs,
                 scale: float = 1.0):
        super().__init__(env, name, timing, lanes, row_length,
                         [(vector_in, FIRST), (block_in, EACH)], [(outputs, EACH)])
        self.scale = scale
        self.vector = None

    def fire(self, values, first, last):
        if first:
            self.vector, block = values
            self.vector = self.vector * self.scale
        else:
            (block,) = values
        return [block @ self.vector]


class Repeat(Unit):
    """Broadcast in time: reads one token per row and emits it on each of ``row_length``
    firings."""

    kind = "repeat"

    def __init__(self, env, name, timing, lanes, row_length, inputs, outputs):
        super().__init__(env, name, timing, lanes, row_length, [(inputs, FIRST)],
                         [(outputs, EACH)])
        self.value = None

    def fire(self, values, first, last):
        if first:
            (self.value,) = values
        return [self.value]


class Source(Unit):
    """Streams tokens from memory into the fabric at one token per ``cycles``."""

    kind = "source"

    def __init__(self, env, name, timing, lanes, tokens: Iterable, outputs):
        super().__init__(env, name, timing, lanes, 1, [], [(outputs, EACH)])
        self.tokens = tokens

    def run(self, local: bool = True):
        env = self.env
        out_channels = self.outputs[0][0]
        latency = self.latency
        for value in self.tokens:
            if not local and env.now < self.next_fire:
                self.events += 1
                yield env.timeout(self.next_fire - env.now)
            now = self.next_fire if local else env.now
            for ch in out_channels:
                while not ch.credits:
                    self.waiting = (PUT, ch)
                    self.events += 1
                    yield ch.wait_space()
                if local and ch.credits[0] > now:
                    now = ch.credits[0]
            if not local:
                now = env.now
            self.waiting = None
            if now > self.max_cycles:
                self.stopped = True
                return
            self.now = now
            for ch in out_channels:
                ch.push(value, now, latency)
            self.firings += 1
            self.next_fire = now + self.cycles
        self.done = True


class Sink(Unit):
    """Collects ``expected`` tokens (the results) and records the cycle of the last one."""

    kind = "sink"

    def __init__(self, env, name, timing, lanes, channel: Channel, expected: int):
        super().__init__(env, name, timing, lanes, 1, [(channel, EACH)], [])
        self.expected = expected
        self.values: list = []
        self.finish_cycle: int | None = None
        self.done = expected == 0

    def fire(self, values, first, last):
        self.values.append(values[0])
        if len(self.values) == self.expected:
            self.done = True
            self.finish_cycle = self.now
        return []
