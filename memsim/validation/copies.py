"""Memory-bound model of the measured copies (memsim has no copy workload yet).

* Device copy of ``B`` bytes (cudaMemcpy or an elementwise kernel): one kernel that reads and
  writes ``B`` bytes over the shared HBM bus, ``launch_overhead + 2B / hbm_bandwidth``.
  HBM reads ``B``; the writes Nsight Compute sees are those that leave L2 while the kernel
  runs: an LRU L2 fed equal read and write streams ends the kernel with half of it dirty, so
  ``max(0, B - L2/2)`` with L2 the capacity the LRU uses (``lru_capacity_bytes``: the
  measured reuse capacity on h100-sxm) (validation/README.md, caveat 1). L2 reads ``B``.
* Pinned host<->device copy over PCIe: ``overhead + latency + B / pcie_bandwidth``, with the
  preset's ``pcie`` link.
"""
from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CopyPrediction", "predict_copy", "visible_writes"]


def visible_writes(reads: float, writes: float, l2: float) -> float:
    """Writes that reach HBM while a memory-bound kernel runs: an LRU L2 of ``l2`` bytes fed
    read and write streams in the ratio reads : writes ends the kernel with a
    ``writes / (reads + writes)`` share of it dirty (reads = writes: half of it)."""
    if writes <= 0:
        return 0.0
    return max(0.0, writes - l2 * writes / (reads + writes))


@dataclass(frozen=True)
class CopyPrediction:
    time_s: float
    hbm_read_bytes: float
    hbm_write_bytes: float        # written into HBM in all
    hbm_write_visible: float      # of which leave L2 before the kernel ends
    l2_read_bytes: float


def predict_copy(hw, direction: str, nbytes: int) -> CopyPrediction:
    """Predict one copy of ``nbytes`` (``direction``: d2d, h2d or d2h) on ``hw``."""
    if direction == "d2d":
        hbm = hw.memory("hbm")
        l2 = hw.memory("l2")
        t = hw.gpu.launch_overhead_s + nbytes / hbm.read_bandwidth + nbytes / hbm.write_bandwidth
        visible = visible_writes(nbytes, nbytes, l2.lru_capacity_bytes)
        return CopyPrediction(t, nbytes, nbytes, visible, nbytes)
    link = hw.link_between("host", "hbm")
    if link is None:
        raise ValueError(f"hardware {hw.name!r} has no host<->hbm link")
    src, dst = ("host", "hbm") if direction == "h2d" else ("hbm", "host")
    t = link.overhead_s + link.latency_s + nbytes / link.bandwidth(src, dst)
    return CopyPrediction(t, 0.0, 0.0, 0.0, 0.0)
