"""Bounded FIFO channels between the units of a streaming dataflow fabric.

A channel carries *tokens*: one token is what crosses the channel in one transfer (a scalar, a
lanes-wide slice of scores, a block of key vectors). ``depth`` counts entries (tokens);
occupancy is recorded both in entries and in elements (numbers), because intermediate memory
is a count of numbers held.

Timing: a token of ``token_elements`` through a channel ``width`` elements wide takes
``ceil(token_elements / width)`` cycles to cross (the producer cannot fire faster than that,
see ``Unit``); it becomes visible to the consumer ``latency`` cycles after its last part was
sent. Flow control is credit based: a producer sends only when the channel has a free entry,
and the entry counts as occupied from that cycle (including while the token is still in
flight), which is how hardware FIFOs with credit return are sized.
"""
from __future__ import annotations

from collections import deque
from math import ceil

import numpy as np

__all__ = ["Channel"]


class Channel:
    """A bounded FIFO with one producer and one consumer.

    Flow control is by credits: ``credits`` holds one entry per free slot, stamped with the cycle
    it became free (0 at the start); a push takes the oldest credit (it cannot happen before
    that cycle), a pop returns one stamped with its cycle. ``push``/``pop`` never block: the
    units check for a credit / a token first and wait on ``wait_space``/``wait_data`` (simpy
    events) when there is none.

    Occupancy is measured at the end of each cycle (pushes up to cycle t minus pops up to t),
    from the push and pop cycles, so it does not depend on the order in which the simulation
    happens to process units within a cycle, or on units running ahead on local clocks.
    """

    __slots__ = ("env", "name", "depth", "width", "latency", "token_elements",
                 "transfer_cycles", "items", "credits", "peak_entries",
                 "peak_elements", "pushes", "pushed_elements", "pops", "popped_elements",
                 "producer", "consumer", "intermediate", "auto_depth", "slack",
                 "_pending_pushes", "_pending_pops", "_counted_pops", "_counted_elements",
                 "_data_waiter", "_space_waiter")

    def __init__(self, env, name: str, depth: int, width: int, latency: int,
                 token_elements: int, intermediate: bool = True):
        if depth < 1:
            raise ValueError(f'channel {name!r}: "depth" must be >= 1 entry, got {depth}')
        if width < 1:
            raise ValueError(f'channel {name!r}: "width" must be >= 1 element, got {width}')
        if latency < 0:
            raise ValueError(f'channel {name!r}: "latency" must be >= 0 cycles, got {latency}')
        self.env = env
        self.name = name
        self.depth = depth
        self.width = width
        self.latency = latency
        self.token_elements = token_elements
        self.transfer_cycles = max(1, ceil(token_elements / width))
        self.producer: str | None = None
        self.consumer: str | None = None
        self.intermediate = intermediate    # between two compute units (not a source/sink port)
        self.auto_depth = False             # depth may be raised to cover the round trip
        self.slack = 0                      # extra entries for a join's skew (auto depth only)
        self.reset()

    def reset(self) -> None:
        """Empty the channel and its statistics (called when a run starts)."""
        self.items: deque = deque()        # (ready_cycle, value, elements)
        self.credits: deque = deque([0] * self.depth)
        self.peak_entries = self.peak_elements = 0
        self.pushes = self.pushed_elements = self.pops = self.popped_elements = 0
        self._pending_pushes: deque = deque()   # (cycle, pushes, pushed_elements) not yet measured
        self._pending_pops: deque = deque()     # (cycle, pops, popped_elements) not counted yet
        self._counted_pops = self._counted_elements = 0
        self._data_waiter = None
        self._space_waiter = None

    # -- state -------------------------------------------------------------------------------
    @property
    def entries(self) -> int:
        return len(self.items)

    @property
    def elements(self) -> int:
        """Elements held now (in simulation order)."""
        return sum(item[2] for item in self.items)

    def has_space(self) -> bool:
        return bool(self.credits)

    # -- transfers ---------------------------------------------------------------------------
    def push(self, value, now: int, unit_latency: int) -> None:
        """Send ``value`` at cycle ``now`` (not before ``credits[0]``) from a unit whose
        pipeline takes ``unit_latency`` cycles."""
        # elements in the token (a vector, a tuple of scalars, or a scalar)
        size = value.size if type(value) is np.ndarray else (
            len(value) if type(value) is tuple else 1)
        self.credits.popleft()
        self.items.append((now + unit_latency + self.transfer_cycles - 1 + self.latency,
                           value, size))
        self.pushes += 1
        self.pushed_elements += size
        self._pending_pushes.append((now, self.pushes, self.pushed_elements))
        waiter = self._data_waiter
        if waiter is not None:
            self._data_waiter = None
            waiter.succeed()

    def pop(self, now: int):
        """Take the head token at cycle ``now`` (the caller has checked that it is ready)."""
        _, value, size = self.items.popleft()
        self.credits.append(now)
        self.pops += 1
        self.popped_elements += size
        pending = self._pending_pops
        pending.append((now, self.pops, self.popped_elements))
        if len(pending) > 32:           # measure in batches: fewer calls, same result
            self._measure()
        waiter = self._space_waiter
        if waiter is not None:
            self._space_waiter = None
            waiter.succeed()
        return value

    def _measure(self, final: bool = False) -> None:
        # Occupancy at the end of a push's cycle p is (pushes <= p) - (pops <= p). Pushes and
        # pops each come in increasing cycles, but may be simulated out of order; a push is
        # measured once a pop after its cycle is known (or at the end of the run).
        pushes, pops = self._pending_pushes, self._pending_pops
        while pushes:
            cycle, pushed, pushed_elements = pushes[0]
            while pops and pops[0][0] <= cycle:
                _, self._counted_pops, self._counted_elements = pops.popleft()
            if not pops and not final:
                return
            pushes.popleft()
            entries = pushed - self._counted_pops
            if entries > self.peak_entries:
                self.peak_entries = entries
            elements = pushed_elements - self._counted_elements
            if elements > self.peak_elements:
                self.peak_elements = elements

    def finish(self) -> None:
        """Measure the pushes still pending at the end of a run."""
        self._measure(final=True)

    def wait_data(self):
        """A simpy event that fires when the next token is pushed."""
        self._data_waiter = event = self.env.event()
        return event

    def wait_space(self):
        """A simpy event that fires when an entry is freed."""
        self._space_waiter = event = self.env.event()
        return event

    def stats(self) -> dict:
        """Peak occupancy and traffic of this channel."""
        return {"depth_entries": self.depth, "width_elements": self.width,
                "latency_cycles": self.latency, "token_elements": self.token_elements,
                "peak_entries": self.peak_entries, "peak_elements": self.peak_elements,
                "tokens": self.pushes, "elements": self.pushed_elements,
                "producer": self.producer, "consumer": self.consumer,
                "intermediate": self.intermediate}
