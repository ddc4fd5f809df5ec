"""A link (PCIe, NVMe, peer-to-peer) per direction: ``time = latency + overhead + bytes / bw``.

The per-transfer ``overhead`` occupies the direction (DMA setup: transfers in one direction are
serialised), the ``latency`` does not (it is pipelined). The two directions are independent
servers, as PCIe is full duplex. Peer-to-peer links (GPU <-> SSD) are used only where the
hardware's ``Link.peer_to_peer`` says so.
"""
from __future__ import annotations

from dataclasses import dataclass

import simpy

from ..errors import InputError
from ..hardware.model import Hardware, Link

__all__ = ["LinkModel", "LinkResources"]


@dataclass(frozen=True)
class LinkModel:
    """One link of a hardware description, with the time of one transfer."""

    link: Link

    @classmethod
    def between(cls, hardware: Hardware, src: str, dst: str) -> "LinkModel":
        link = hardware.link_between(src, dst)
        if link is None:
            raise InputError(f"hardware {hardware.name!r} has no link between {src!r} and "
                             f"{dst!r}; links: {', '.join(l.name for l in hardware.links)}")
        return cls(link)

    def transfer_time(self, nbytes: float, src: str, dst: str) -> float:
        """Time of one transfer of ``nbytes`` on an idle link (s); 0 for 0 bytes."""
        if nbytes <= 0:
            return 0.0
        return self.link.latency_s + self.link.overhead_s + nbytes / self.link.bandwidth(src, dst)

    def occupancy(self, nbytes: float, src: str, dst: str, transfers: int = 1) -> float:
        """Time the direction is held by ``transfers`` transfers moving ``nbytes`` in total."""
        if nbytes <= 0:
            return 0.0
        return transfers * self.link.overhead_s + nbytes / self.link.bandwidth(src, dst)


class LinkResources:
    """Both directions of a link as simpy resources, with bytes and busy time per direction."""

    def __init__(self, env: simpy.Environment, model: LinkModel):
        self.env = env
        self.model = model
        a, b = model.link.a, model.link.b
        self.dirs = {(a, b): simpy.Resource(env, 1), (b, a): simpy.Resource(env, 1)}
        self.bytes = {(a, b): 0, (b, a): 0}
        self.busy_s = {(a, b): 0.0, (b, a): 0.0}

    def transfer(self, nbytes: float, src: str, dst: str, transfers: int = 1):
        """A process: hold the direction for the transfers' occupancy, then the latency."""
        if nbytes <= 0:
            return
        key = (src, dst)
        if key not in self.dirs:
            raise InputError(f"link {self.model.link.name!r} does not join {src!r} -> {dst!r}")
        hold = self.model.occupancy(nbytes, src, dst, transfers)
        with self.dirs[key].request() as req:
            yield req
            yield self.env.timeout(hold)
        self.bytes[key] += nbytes
        self.busy_s[key] += hold
        if self.model.link.latency_s > 0:
            yield self.env.timeout(self.model.link.latency_s)
