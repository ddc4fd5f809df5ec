"""A flash/SSD device as simpy resources, and its closed-form steady-state throughput.

One read (or write) request of ``c`` bytes, issued by a host thread, goes through:

1. a **queue slot** of the device (``queue_depth`` slots; a thread waits while all are taken);
2. the **per-request overhead** ``o`` (``request_overhead_s``) on a single FIFO server: command
   submission, completion interrupt and the driver path, which do not run in parallel
   (measured as the IOPS ceiling of small reads, see ``fit.py``);
3. the **latency to first byte** ``L``: a pure delay (flash sense time, firmware), overlapped
   across requests in flight;
4. the **transfer** over the flash channels: the request's pages are striped over
   ``k = min(ceil(c / page), channels)`` channels, each moving ``c / k`` bytes at
   ``channel_bandwidth`` (``write_channel_bandwidth`` for writes). The channels are a pool of
   ``channels`` tokens; a request holds ``k`` of them for ``c / (k · bw)``.

Sequential streams hide ``L`` behind read-ahead: only the first request of a stream pays it.

For ``t`` threads each keeping one request in flight (``q = min(t, queue_depth)``), the
deterministic steady state is a cyclic network, whose throughput in requests/s is

    X = min(q / (o + L + c / (k · bw)),  1 / o,  channels · bw / c)

:meth:`StorageDevice.throughput` evaluates this; :func:`simulate_reads` runs the same device in
simpy and is tested against it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import simpy

from ..errors import InputError
from ..hardware.model import FlashSpec, MemoryLevel

__all__ = ["StorageDevice", "StorageResources", "simulate_reads", "ReadRun"]


@dataclass(frozen=True)
class StorageDevice:
    """The parameters of the device model (SI units), usually built from a ``flash`` level."""

    name: str
    page_bytes: int
    channels: int
    channel_bandwidth: float
    latency_to_first_byte_s: float
    queue_depth: int
    request_overhead_s: float = 0.0
    write_channel_bandwidth: float | None = None
    capacity_bytes: int | None = None

    def __post_init__(self) -> None:
        for field_name in ("page_bytes", "channels", "channel_bandwidth", "queue_depth"):
            if not getattr(self, field_name) > 0:
                raise InputError(f"storage device {self.name!r}: {field_name} must be > 0, "
                                 f"got {getattr(self, field_name)!r}")

    @classmethod
    def from_level(cls, level: MemoryLevel) -> "StorageDevice":
        """The device model of a ``kind: flash`` memory level."""
        if level.flash is None:
            raise InputError(f"memory level {level.name!r} is {level.kind!r} without a 'flash' "
                             "section, expected a flash level (page, channels, ...)")
        f: FlashSpec = level.flash
        return cls(level.name, f.page_bytes, f.channels, f.channel_bandwidth,
                   f.latency_to_first_byte_s, f.queue_depth, f.request_overhead_s,
                   f.write_channel_bandwidth, level.total_capacity_bytes)

    # -- closed form ------------------------------------------------------------------------------
    def bandwidth(self, write: bool = False) -> float:
        """Bandwidth of one channel for reads or writes (bytes/s)."""
        if write and self.write_channel_bandwidth is not None:
            return self.write_channel_bandwidth
        return self.channel_bandwidth

    def stripe(self, chunk_bytes: float) -> int:
        """Channels one request of ``chunk_bytes`` is striped over."""
        return max(1, min(math.ceil(chunk_bytes / self.page_bytes), self.channels))

    def transfer_time(self, chunk_bytes: float, write: bool = False) -> float:
        """Time one request holds its channels (s)."""
        return chunk_bytes / (self.stripe(chunk_bytes) * self.bandwidth(write))

    def request_time(self, chunk_bytes: float, write: bool = False,
                     sequential: bool = False) -> float:
        """Time of one request on an idle device (s)."""
        latency = 0.0 if sequential else self.latency_to_first_byte_s
        return self.request_overhead_s + latency + self.transfer_time(chunk_bytes, write)

    def throughput(self, chunk_bytes: float, threads: int = 1, write: bool = False,
                   sequential: bool = False) -> float:
        """Steady-state bytes/s of ``threads`` threads each keeping one request of
        ``chunk_bytes`` in flight (the formula in the module docstring)."""
        if chunk_bytes <= 0 or threads < 1:
            raise InputError(f"chunk_bytes must be > 0 and threads >= 1, got {chunk_bytes!r}, "
                             f"{threads!r}")
        q = min(threads, self.queue_depth)
        rate = q / self.request_time(chunk_bytes, write, sequential)
        if self.request_overhead_s > 0:
            rate = min(rate, 1.0 / self.request_overhead_s)
        rate = min(rate, self.channels * self.bandwidth(write) / chunk_bytes)
        return rate * chunk_bytes

    def read_time(self, total_bytes: float, chunk_bytes: float, threads: int = 1,
                  write: bool = False, sequential: bool = False) -> float:
        """Time to move ``total_bytes`` as requests of ``chunk_bytes`` (steady state plus the
        first request's latency)."""
        if total_bytes <= 0:
            return 0.0
        chunk = min(chunk_bytes, total_bytes)
        steady = total_bytes / self.throughput(chunk, threads, write, sequential)
        return steady + (self.latency_to_first_byte_s if sequential else 0.0)


class StorageResources:
    """The simpy resources of one device in one environment; :meth:`request` is a process."""

    def __init__(self, env: simpy.Environment, device: StorageDevice):
        self.env = env
        self.device = device
        self.slots = simpy.Resource(env, capacity=device.queue_depth)
        self.controller = simpy.Resource(env, capacity=1)
        self.channels = simpy.Container(env, capacity=device.channels, init=device.channels)
        self.read_bytes = 0
        self.write_bytes = 0
        self.requests = 0
        self.channel_busy_s = 0.0      # token-seconds / channels: utilisation of the flash
        self._busy_intervals: list[tuple[float, float]] = []

    def request(self, chunk_bytes: int, write: bool = False, first_of_stream: bool = True):
        """One request (a simpy process generator): slot, overhead, latency, transfer."""
        dev = self.device
        with self.slots.request() as slot:
            yield slot
            start = self.env.now
            if dev.request_overhead_s > 0:
                with self.controller.request() as ctl:
                    yield ctl
                    yield self.env.timeout(dev.request_overhead_s)
            if first_of_stream and dev.latency_to_first_byte_s > 0:
                yield self.env.timeout(dev.latency_to_first_byte_s)
            k = dev.stripe(chunk_bytes)
            yield self.channels.get(k)
            hold = dev.transfer_time(chunk_bytes, write)
            yield self.env.timeout(hold)
            yield self.channels.put(k)
            self.channel_busy_s += hold * k / dev.channels
            self._busy_intervals.append((start, self.env.now))
        self.requests += 1
        if write:
            self.write_bytes += chunk_bytes
        else:
            self.read_bytes += chunk_bytes

    @property
    def busy_s(self) -> float:
        """Time during which at least one request was in the device (union of intervals)."""
        total, end = 0.0, -math.inf
        for a, b in sorted(self._busy_intervals):
            if b <= end:
                continue
            total += b - max(a, end)
            end = b
        return total


@dataclass(frozen=True)
class ReadRun:
    """Outcome of :func:`simulate_reads`."""

    time_s: float
    bytes: int
    requests: int
    busy_s: float

    @property
    def bytes_per_s(self) -> float:
        return self.bytes / self.time_s if self.time_s > 0 else 0.0


def simulate_reads(device: StorageDevice, chunk_bytes: int, threads: int,
                   requests_per_thread: int = 64, write: bool = False,
                   sequential: bool = False) -> ReadRun:
    """Simulate ``threads`` host threads, each issuing ``requests_per_thread`` requests of
    ``chunk_bytes`` back to back (one in flight per thread), and measure the throughput."""
    if threads < 1 or requests_per_thread < 1:
        raise InputError(f"threads and requests_per_thread must be >= 1, got {threads!r}, "
                         f"{requests_per_thread!r}")
    env = simpy.Environment()
    res = StorageResources(env, device)

    def thread():
        for i in range(requests_per_thread):
            yield env.process(res.request(chunk_bytes, write, first_of_stream=not sequential
                                          or i == 0))

    for _ in range(threads):
        env.process(thread())
    env.run()
    total = res.write_bytes if write else res.read_bytes
    return ReadRun(env.now, total, res.requests, res.busy_s)
