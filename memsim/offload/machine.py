"""The parts of a hardware description that offloading models use, looked up once.

An offloading system has a GPU memory (``hbm``), a host memory (``host``, or ``dram`` on a
unified-memory machine), a flash device (``ssd``) and the links between them (``pcie``
host<->hbm, ``nvme`` host<->ssd, and optionally a peer-to-peer ssd<->hbm link). Compute rates
are looked up by instruction class.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError
from ..hardware.model import Hardware, Link, MemoryLevel
from ..storage.device import StorageDevice
from ..storage.link import LinkModel

__all__ = ["OffloadMachine", "rate_of"]


def rate_of(hardware: Hardware, names: tuple[str, ...]) -> float:
    """The effective rate (achievable where measured, else peak) of the first instruction class
    in ``names`` that the hardware has."""
    for name in names:
        for unit in hardware.compute:
            if name in unit.rates:
                return unit.rates[name].effective
    known = sorted({r for unit in hardware.compute for r in unit.rates})
    raise InputError(f"hardware {hardware.name!r} has none of the instruction classes "
                     f"{', '.join(names)}; known: {', '.join(known) or '(none)'}")


@dataclass(frozen=True)
class OffloadMachine:
    """GPU memory, host memory, flash device and links of one hardware description."""

    hardware: Hardware
    gpu: MemoryLevel | None
    host: MemoryLevel
    disk: StorageDevice | None
    disk_level: MemoryLevel | None
    pcie: LinkModel | None
    nvme: LinkModel | None
    p2p: LinkModel | None

    @classmethod
    def of(cls, hardware: Hardware, host: str = "host") -> "OffloadMachine":
        gpu = hardware.memory("hbm") if hardware.has_memory("hbm") else None
        if not hardware.has_memory(host):
            host = "dram"
        if not hardware.has_memory(host):
            raise InputError(f"hardware {hardware.name!r} has no host memory level ('host' or "
                             f"'dram'), which offloading needs; levels: "
                             f"{', '.join(m.name for m in hardware.memories)}")
        host_level = hardware.memory(host)
        disk_level = hardware.memory("ssd") if hardware.has_memory("ssd") else None
        disk = StorageDevice.from_level(disk_level) if disk_level is not None else None
        pcie = _link(hardware.link_between(host_level.name, "hbm")) if gpu else None
        nvme = _link(hardware.link_between("ssd", host_level.name)) if disk else None
        p2p_link = hardware.link_between("ssd", "hbm") if gpu and disk else None
        p2p = _link(p2p_link) if p2p_link is not None and p2p_link.peer_to_peer else None
        return cls(hardware, gpu, host_level, disk, disk_level, pcie, nvme, p2p)

    def require(self, *parts: str) -> None:
        """Raise an InputError naming the first missing part (gpu, disk, pcie, nvme, p2p)."""
        names = {"gpu": "memory level 'hbm'", "disk": "flash level 'ssd'",
                 "pcie": "link host<->hbm", "nvme": "link ssd<->host",
                 "p2p": "peer_to_peer link ssd<->hbm"}
        for part in parts:
            if getattr(self, part) is None:
                raise InputError(f"hardware {self.hardware.name!r} has no {names[part]}, which "
                                 "this offloading model needs")


def _link(link: Link | None) -> LinkModel | None:
    return LinkModel(link) if link is not None else None
