"""Roofline of LLM operators: time = max(FLOPs / peak, bytes / bandwidth) per operator.

This is LLM-Viewer's ``roofline_analyze`` (papers.md Sec. 9): attainable = min(peak, AI × BW),
time = FLOPs / attainable, bound = "memory" below the ridge point. A ``RooflineMachine`` is the
handful of numbers it needs: HBM bandwidth and the peak rates of the tensor units (matmuls) and
of the vector units (norms, softmax, elementwise). ``RooflineMachine.from_hardware`` reads them
from a memsim hardware description; tests build one from LLM-Viewer's own figures.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from ..errors import InputError
from .operators import Operator

__all__ = ["RooflineMachine", "OpCost", "roofline", "stage_totals", "format_table"]


@dataclass(frozen=True)
class RooflineMachine:
    """Bandwidth (bytes/s) of the memory holding weights and KV cache, and peak rates (FLOP/s)."""

    name: str
    bandwidth: float
    tensor_flops: float
    vector_flops: float

    def peak(self, compute: str) -> float:
        return self.tensor_flops if compute == "tensor" else self.vector_flops

    @property
    def ridge(self) -> float:
        """Ridge point of the tensor roof, FLOPs per byte."""
        return self.tensor_flops / self.bandwidth

    @classmethod
    def from_hardware(cls, hw, dtype: str, memory: str = "hbm") -> "RooflineMachine":
        """Bandwidth of ``memory``; the fastest rate of ``dtype`` (matmuls; fp16 and bf16 stand
        in for each other) and the fp32 non-tensor rate ``fp32_fma`` (vector ops), using the
        achievable rate where the hardware file has one."""
        level = hw.memory(memory)
        wanted = {dtype} | ({"fp16", "bf16"} if dtype in ("fp16", "bf16") else set())
        tensor = [r.effective for u in hw.compute for r in u.rates.values() if r.dtype in wanted]
        if not tensor:
            raise InputError(f"hardware {hw.name!r} has no compute rate for dtype {dtype!r}")
        vector = [r.effective for u in hw.compute for n, r in u.rates.items() if n == "fp32_fma"]
        return cls(hw.name, level.read_bandwidth, max(tensor), vector[0] if vector
                   else max(tensor))


@dataclass(frozen=True)
class OpCost:
    """An operator with its roofline: per-instance time, bound, and the stage total."""

    op: Operator
    time_s: float
    bound: str                  # memory | compute
    attainable_flops: float

    @property
    def total_time_s(self) -> float:
        return self.time_s * self.op.count


def roofline(ops: Iterable[Operator], machine: RooflineMachine) -> list[OpCost]:
    """Roofline cost of each operator on ``machine``."""
    out = []
    for op in ops:
        peak = machine.peak(op.compute)
        memory_time = op.bytes / machine.bandwidth
        compute_time = op.flops / peak
        bound = "compute" if compute_time > memory_time else "memory"
        attainable = min(peak, op.intensity * machine.bandwidth)
        out.append(OpCost(op, max(memory_time, compute_time), bound, attainable))
    return out


def stage_totals(costs: Sequence[OpCost]) -> dict[str, float]:
    """FLOPs, bytes (by tensor class) and roofline time of a stage."""
    def total(attr: str) -> float:
        return sum(getattr(c.op, attr) * c.op.count for c in costs)
    return {"time_s": sum(c.total_time_s for c in costs), "flops": total("flops"),
            "bytes": total("bytes"), "weight_bytes": total("weight_bytes"),
            "act_bytes": total("act_read_bytes") + total("act_write_bytes"),
            "kv_read_bytes": total("kv_read_bytes"), "kv_write_bytes": total("kv_write_bytes"),
            "read_bytes": total("read_bytes"), "write_bytes": total("write_bytes")}


def _si(value: float, unit: str = "") -> str:
    for factor, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}".rstrip()


def format_table(costs: Sequence[OpCost], sim_times: dict | None = None) -> str:
    """The per-operator table: FLOPs, bytes, intensity, bound, time per instance and per stage.

    ``sim_times`` maps an operator's name to its simulated per-instance time (a column is added
    when given)."""
    head = ["operator", "count", "FLOPs", "bytes", "FLOP/B", "bound", "time", "x count"]
    if sim_times:
        head.append("simulated")
    rows = [head]
    for c in costs:
        row = [c.op.name, str(c.op.count), _si(c.op.flops), _si(c.op.bytes, "B"),
               f"{c.op.intensity:.4g}", c.bound, _fmt_time(c.time_s),
               _fmt_time(c.total_time_s)]
        if sim_times:
            t = sim_times.get(c.op.name)
            row.append(_fmt_time(t * c.op.count) if t is not None else "-")
        rows.append(row)
    t = stage_totals(costs)
    total = ["total", "", _si(t["flops"]), _si(t["bytes"], "B"),
             f"{t['flops'] / t['bytes']:.4g}", "", "", _fmt_time(t["time_s"])]
    if sim_times:
        total.append(_fmt_time(sum(sim_times.get(c.op.name, c.time_s) * c.op.count
                                   for c in costs)))
    rows.append(total)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                       for i, (cell, w) in enumerate(zip(r, widths))) for r in rows]
    lines.insert(1, "-" * len(lines[0]))
    lines.insert(len(lines) - 1, "-" * len(lines[0]))
    return "\n".join(lines)


def _fmt_time(seconds: float) -> str:
    if seconds >= 1:
        return f"{seconds:.3f} s"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.3f} ms"
    return f"{seconds * 1e6:.2f} us"
