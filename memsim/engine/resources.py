"""Small resources of the engine: bandwidth channels, compute units, occupancy of a level.

Channels and compute units are FIFO servers whose state is one "free at" time: a request at
time ``now`` starts at ``max(now, free_at)``, holds the server for ``amount / rate`` seconds,
and the caller waits (one simpy timeout) until it ends. Many SMs queueing on one channel so
share its bandwidth; an unloaded channel serves one transfer at full speed. This costs no simpy
events of its own (a simpy ``Resource`` would cost a request and a release event per tile),
which is what lets 0.5 M tiles simulate in seconds. Requests are only made at the simulated
time they are issued, so the FIFO order is the order of issue.
"""
from __future__ import annotations

from ..errors import CapacityError
from ..units import format_quantity

__all__ = ["Channel", "Occupancy"]


class Channel:
    """A FIFO server with a rate (bytes/s for links, ops/s for compute units) and a latency
    added to each request's completion."""

    __slots__ = ("name", "rate", "latency_s", "free_at", "busy_s", "amount")

    def __init__(self, name: str, rate: float, latency_s: float = 0.0):
        if not rate > 0:
            raise ValueError(f'"rate" of channel {name!r} must be > 0, got {rate!r}')
        self.name = name
        self.rate = float(rate)
        self.latency_s = float(latency_s)
        self.free_at = 0.0
        self.busy_s = 0.0
        self.amount = 0.0

    def reserve(self, now: float, amount: float) -> float:
        """Queue ``amount`` at time ``now``; returns the time its service ends (no latency)."""
        start = self.free_at if self.free_at > now else now
        duration = amount / self.rate
        self.free_at = start + duration
        self.busy_s += duration
        self.amount += amount
        return self.free_at


class Occupancy:
    """Bytes held in each instance of a memory level (e.g. the shared memory of each SM),
    with the peak per instance. Allocating beyond the capacity is a :class:`CapacityError`."""

    def __init__(self, name: str, capacity_bytes: float, instances: int):
        self.name = name
        self.capacity_bytes = float(capacity_bytes)
        self.used = [0.0] * instances
        self.peak_bytes = 0.0

    def allocate(self, instance: int, nbytes: float, buffer: str) -> None:
        used = self.used[instance] + nbytes
        if used > self.capacity_bytes:
            free = self.capacity_bytes - self.used[instance]
            raise CapacityError(
                f"{buffer} needs {format_quantity(nbytes, 'bytes')} ({nbytes:,.0f} B) of "
                f"{self.name}[{instance}], which has {free:,.0f} B free of "
                f"{self.capacity_bytes:,.0f} B")
        self.used[instance] = used
        if used > self.peak_bytes:
            self.peak_bytes = used

    def release(self, instance: int, nbytes: float) -> None:
        self.used[instance] -= nbytes
