"""Hardware descriptions as frozen value objects, in SI base units.

A ``Hardware`` is a graph: memory levels (each names its ``parent``, the slower level it is
filled from), links between levels or devices (PCIe, NVLink, NVMe, NoC), compute units with
rates per instruction class, optional GPU execution parameters, and an optional streaming
dataflow fabric. Every number from a datasheet, paper or measurement carries a ``source``.

Bandwidths are stored **aggregate** (all instances together); ``per_instance`` helpers divide.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from ..errors import InputError

__all__ = [
    "CacheSpec", "FlashSpec", "MemoryLevel", "Link", "Rate", "ComputeUnit", "GpuExecution",
    "FabricUnit", "ChannelSpec", "FabricSpec", "Hardware", "MEMORY_KINDS", "HARDWARE_KINDS",
]

MEMORY_KINDS = ("scratchpad", "cache", "dram", "flash")
HARDWARE_KINDS = ("gpu", "system", "storage", "dataflow", "accelerator")


def _frozen_map(mapping: Mapping | None) -> Mapping:
    return MappingProxyType(dict(mapping or {}))


@dataclass(frozen=True)
class CacheSpec:
    """A level that caches its parent: line and sector sizes, associativity (None = fully
    associative LRU), replacement policy. ``reuse_capacity_bytes`` (with ``reuse_source``) is a
    measured capacity for data re-read across the chip, which the simulator's LRU uses instead
    of the datasheet capacity (e.g. H100's two L2 partitions keep copies of far data)."""

    line_bytes: int
    sector_bytes: int | None = None
    associativity: int | None = None
    policy: str = "lru"
    reuse_capacity_bytes: int | None = None
    reuse_source: str | None = None


@dataclass(frozen=True)
class FlashSpec:
    """Flash/SSD internals: the device model of a ``flash`` memory level.

    ``compute`` names a compute unit inside the drive (computational storage), if any.
    """

    page_bytes: int
    channels: int
    channel_bandwidth: float            # bytes/s per channel (internal flash read)
    latency_to_first_byte_s: float
    queue_depth: int
    request_overhead_s: float = 0.0
    write_channel_bandwidth: float | None = None
    compute: str | None = None
    source: str = ""

    @property
    def internal_read_bandwidth(self) -> float:
        return self.channels * self.channel_bandwidth


@dataclass(frozen=True)
class MemoryLevel:
    """One memory level. ``capacity_bytes`` is per instance (e.g. per SM for ``sram``).

    Bandwidths are kept as the datasheet ``peak_*`` and, where measured, the ``achievable_*``
    figure (with ``achievable_source``), like compute rates; ``read_bandwidth`` and
    ``write_bandwidth`` are what the simulator uses: achievable where given, else peak."""

    name: str
    kind: str
    capacity_bytes: int
    peak_read_bandwidth: float          # bytes/s, aggregate over instances
    peak_write_bandwidth: float         # bytes/s, aggregate over instances
    latency_s: float = 0.0
    instances: int = 1
    per: str | None = None              # what one instance belongs to, e.g. "sm"
    parent: str | None = None
    granularity_bytes: int = 1
    max_per_block_bytes: int | None = None   # scratchpad usable by one thread block
    cache: CacheSpec | None = None
    flash: FlashSpec | None = None
    source: str = ""
    achievable_read_bandwidth: float | None = None
    achievable_write_bandwidth: float | None = None
    achievable_source: str | None = None

    @property
    def read_bandwidth(self) -> float:
        """The read bandwidth the simulator uses: achievable where measured, else peak."""
        a = self.achievable_read_bandwidth
        return a if a is not None else self.peak_read_bandwidth

    @property
    def write_bandwidth(self) -> float:
        """The write bandwidth the simulator uses: achievable where measured, else peak."""
        a = self.achievable_write_bandwidth
        return a if a is not None else self.peak_write_bandwidth

    @property
    def total_capacity_bytes(self) -> int:
        return self.capacity_bytes * self.instances

    @property
    def lru_capacity_bytes(self) -> int:
        """The capacity the simulator's LRU uses: the measured reuse capacity of a cache where
        given, else the capacity."""
        reuse = self.cache.reuse_capacity_bytes if self.cache is not None else None
        return reuse if reuse is not None else self.capacity_bytes

    @property
    def read_bandwidth_per_instance(self) -> float:
        return self.read_bandwidth / self.instances

    @property
    def write_bandwidth_per_instance(self) -> float:
        return self.write_bandwidth / self.instances

    @property
    def is_cache(self) -> bool:
        return self.cache is not None


@dataclass(frozen=True)
class Link:
    """A link between two levels or devices; bandwidth per direction (a->b, b->a).

    As for memory levels, ``peak_*`` is the datasheet figure and ``achievable_*`` (with
    ``achievable_source``) a measured one; ``bandwidth_ab``/``bandwidth_ba`` and
    ``bandwidth(src, dst)`` are what the simulator uses (achievable where given, else peak)."""

    name: str
    kind: str                           # pcie | nvlink | nvme | noc | ...
    a: str
    b: str
    peak_bandwidth_ab: float            # bytes/s from a to b
    peak_bandwidth_ba: float            # bytes/s from b to a
    latency_s: float = 0.0
    overhead_s: float = 0.0             # fixed cost per transfer
    peer_to_peer: bool = False
    source: str = ""
    achievable_bandwidth_ab: float | None = None
    achievable_bandwidth_ba: float | None = None
    achievable_source: str | None = None

    @property
    def bandwidth_ab(self) -> float:
        a = self.achievable_bandwidth_ab
        return a if a is not None else self.peak_bandwidth_ab

    @property
    def bandwidth_ba(self) -> float:
        a = self.achievable_bandwidth_ba
        return a if a is not None else self.peak_bandwidth_ba

    def bandwidth(self, src: str, dst: str) -> float:
        """The bandwidth from ``src`` to ``dst`` the simulator uses (achievable, else peak)."""
        return self._direction(src, dst, self.bandwidth_ab, self.bandwidth_ba)

    def peak_bandwidth(self, src: str, dst: str) -> float:
        """The datasheet peak bandwidth from ``src`` to ``dst``."""
        return self._direction(src, dst, self.peak_bandwidth_ab, self.peak_bandwidth_ba)

    def _direction(self, src: str, dst: str, ab: float, ba: float) -> float:
        if (src, dst) == (self.a, self.b):
            return ab
        if (src, dst) == (self.b, self.a):
            return ba
        raise InputError(f"link {self.name!r} joins {self.a!r} and {self.b!r}, "
                         f"not {src!r} -> {dst!r}")


@dataclass(frozen=True)
class Rate:
    """Peak (and, where measured, achievable) throughput of one instruction class.

    Values are aggregate over all instances of the compute unit, in FLOP/s (or OP/s for
    integer classes; ``unit`` says which).
    """

    name: str
    peak: float
    achievable: float | None = None
    unit: str = "flop"                  # flop | op
    dtype: str | None = None
    instruction: str | None = None
    source: str = ""
    achievable_source: str | None = None

    @property
    def effective(self) -> float:
        """The rate the simulator uses: achievable where measured, else peak."""
        return self.achievable if self.achievable is not None else self.peak


@dataclass(frozen=True)
class ComputeUnit:
    """A group of identical compute units (e.g. the tensor cores of all SMs)."""

    name: str
    instances: int
    rates: Mapping[str, Rate]
    per: str | None = None
    source: str = ""

    def __post_init__(self):
        object.__setattr__(self, "rates", _frozen_map(self.rates))

    def rate(self, name: str) -> Rate:
        if name not in self.rates:
            raise InputError(f"compute unit {self.name!r} has no rate {name!r}; known: "
                             f"{', '.join(sorted(self.rates))}")
        return self.rates[name]


@dataclass(frozen=True)
class GpuExecution:
    """Parameters of the GPU execution model: SMs, blocks per SM, launch overhead."""

    sms: int
    max_blocks_per_sm: int
    launch_overhead_s: float
    clock_hz: float | None = None
    max_threads_per_sm: int | None = None
    registers_per_sm: int | None = None
    source: str = ""


@dataclass(frozen=True)
class FabricUnit:
    """A kind of processing unit of a streaming dataflow fabric."""

    name: str
    kind: str                           # map | reduce | scan | matvec | divide | exp | repeat ...
    initiation_interval: int = 1        # cycles between accepted inputs
    latency_cycles: int = 1
    width: int = 1                      # elements per cycle
    count: int | None = None            # None = as many as the program needs
    source: str = ""


@dataclass(frozen=True)
class ChannelSpec:
    """Default FIFO channel parameters of a dataflow fabric."""

    depth: int                          # elements (or vectors, see width)
    width: int = 1                      # elements per cycle
    latency_cycles: int = 1


@dataclass(frozen=True)
class FabricSpec:
    """A streaming dataflow fabric: clock, unit kinds, default channels."""

    clock_hz: float
    units: Mapping[str, FabricUnit]
    channel: ChannelSpec
    source: str = ""

    def __post_init__(self):
        object.__setattr__(self, "units", _frozen_map(self.units))


@dataclass(frozen=True)
class Hardware:
    """A whole hardware description. Look levels up by name with ``memory(name)``."""

    name: str
    kind: str
    description: str
    memories: tuple[MemoryLevel, ...]
    links: tuple[Link, ...] = ()
    compute: tuple[ComputeUnit, ...] = ()
    gpu: GpuExecution | None = None
    fabric: FabricSpec | None = None
    sources: tuple[str, ...] = ()
    origin: str | None = field(default=None, compare=False)   # preset name or file path

    # -- lookups --------------------------------------------------------------------------------
    def memory(self, name: str) -> MemoryLevel:
        for level in self.memories:
            if level.name == name:
                return level
        raise InputError(f"hardware {self.name!r} has no memory level {name!r}; levels: "
                         f"{', '.join(m.name for m in self.memories)}")

    def has_memory(self, name: str) -> bool:
        return any(level.name == name for level in self.memories)

    def link(self, name: str) -> Link:
        for link in self.links:
            if link.name == name:
                return link
        raise InputError(f"hardware {self.name!r} has no link {name!r}; links: "
                         f"{', '.join(l.name for l in self.links) or '(none)'}")

    def link_between(self, src: str, dst: str) -> Link | None:
        for link in self.links:
            if {link.a, link.b} == {src, dst}:
                return link
        return None

    def compute_unit(self, name: str) -> ComputeUnit:
        for unit in self.compute:
            if unit.name == name:
                return unit
        raise InputError(f"hardware {self.name!r} has no compute unit {name!r}; units: "
                         f"{', '.join(u.name for u in self.compute) or '(none)'}")

    def find_rate(self, name: str) -> tuple[ComputeUnit, Rate]:
        """The compute unit and rate of an instruction class, searched over all units."""
        for unit in self.compute:
            if name in unit.rates:
                return unit, unit.rates[name]
        known = sorted({r for unit in self.compute for r in unit.rates})
        raise InputError(f"hardware {self.name!r} has no instruction class {name!r}; known: "
                         f"{', '.join(known) or '(none)'}")

    def children_of(self, name: str) -> tuple[MemoryLevel, ...]:
        return tuple(level for level in self.memories if level.parent == name)

    def path_to_root(self, name: str) -> tuple[MemoryLevel, ...]:
        """The chain of levels from ``name`` down through its parents (sram, l2, hbm)."""
        chain = [self.memory(name)]
        while chain[-1].parent is not None:
            chain.append(self.memory(chain[-1].parent))
        return tuple(chain)

    # -- serialisation and variants live in io.py; thin wrappers here ---------------------------
    def to_dict(self) -> dict:
        from .io import hardware_to_dict
        return hardware_to_dict(self)

    def to_yaml(self) -> str:
        from .io import hardware_to_yaml
        return hardware_to_yaml(self)

    def with_overrides(self, overrides: Mapping[str, object]) -> "Hardware":
        """A validated variant: ``{"memories.sram.capacity": "128 KiB"}``; list entries are
        addressed by their ``name``."""
        from .io import apply_overrides
        return apply_overrides(self, overrides)
