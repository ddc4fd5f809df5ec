"""Human summaries of a ``Hardware``: the one-liner of ``memsim hardware list`` and the text
table of ``memsim hardware show --format table``."""
from __future__ import annotations

from ..units import format_quantity
from .model import Hardware, MemoryLevel, Rate

__all__ = ["summary_line", "hardware_table", "best_rate"]

_DTYPE_PREFERENCE = ("bf16", "fp16", "fp32")


def best_rate(hw: Hardware) -> tuple[str, Rate] | None:
    """The highest peak rate of the first data type in bf16, fp16, fp32 that the hardware has."""
    rates = [rate for unit in hw.compute for rate in unit.rates.values()]
    for dtype in _DTYPE_PREFERENCE:
        matching = [r for r in rates if r.dtype == dtype and r.unit == "flop"]
        if matching:
            return dtype, max(matching, key=lambda r: r.peak)
    return None


def _device_memory(hw: Hardware) -> MemoryLevel | None:
    if hw.has_memory("hbm"):
        return hw.memory("hbm")
    if hw.has_memory("dram"):
        return hw.memory("dram")
    drams = [m for m in hw.memories if m.kind == "dram"]
    return max(drams, key=lambda m: m.total_capacity_bytes) if drams else None


def _size(value: int) -> str:
    return format_quantity(value, "bytes")


def summary_line(hw: Hardware) -> str:
    """One line such as ``132 SMs, 80 GB HBM @ 3.35 TB/s, 989 TFLOP/s bf16``."""
    parts = []
    if hw.gpu is not None:
        parts.append(f"{hw.gpu.sms} SMs")
    main = _device_memory(hw)
    if main is not None:
        parts.append(f"{_size(main.total_capacity_bytes)} {main.name.upper()} @ "
                     f"{format_quantity(main.read_bandwidth, 'bandwidth', 3)}")
    for name in ("host", "ssd"):
        if hw.has_memory(name) and (main is None or main.name != name):
            level = hw.memory(name)
            parts.append(f"{_size(level.total_capacity_bytes)} {name} @ "
                         f"{format_quantity(level.read_bandwidth, 'bandwidth', 3)}")
    best = best_rate(hw)
    if best is not None:
        dtype, rate = best
        parts.append(f"{format_quantity(rate.peak, 'rate', 3)} {dtype}")
    in_storage = [m.flash.compute for m in hw.memories if m.flash and m.flash.compute]
    if in_storage:
        parts.append(f"in-storage compute: {', '.join(in_storage)}")
    if hw.fabric is not None:
        parts.append(f"fabric @ {format_quantity(hw.fabric.clock_hz, 'frequency', 3)}, "
                     f"{len(hw.fabric.units)} unit kinds")
    return ", ".join(parts)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(str(x)) for x in column) for column in zip(header, *rows)]
    lines = ["  ".join(str(x).ljust(w) for x, w in zip(header, widths)).rstrip()]
    for row in rows:
        lines.append("  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip())
    return lines


def _bw(value: float) -> str:
    return format_quantity(value, "bandwidth")


def _time(value: float) -> str:
    return format_quantity(value, "time") if value else "-"


def hardware_table(hw: Hardware) -> str:
    """A plain-text table of levels, links, compute rates and the fabric (aggregate values)."""
    out = [f"{hw.name} ({hw.kind}): {hw.description}".rstrip(": ")]
    if hw.gpu is not None:
        g = hw.gpu
        clock = format_quantity(g.clock_hz, "frequency") if g.clock_hz else "-"
        out.append(f"gpu: {g.sms} SMs, {g.max_blocks_per_sm} blocks/SM, clock {clock}, "
                   f"launch overhead {_time(g.launch_overhead_s)}")
    out.append("")
    rows = []
    for m in hw.memories:
        rows.append([m.name, m.kind, _size(m.capacity_bytes), str(m.instances),
                     _size(m.total_capacity_bytes), _bw(m.read_bandwidth),
                     _bw(m.write_bandwidth), _time(m.latency_s), m.parent or "-"])
    out += _table(["memory", "kind", "capacity", "inst", "total", "read bw", "write bw",
                   "latency", "parent"], rows)
    if hw.links:
        out.append("")
        rows = [[l.name, l.kind, f"{l.a} -> {l.b}", _bw(l.bandwidth_ab), _bw(l.bandwidth_ba),
                 _time(l.latency_s), _time(l.overhead_s)] for l in hw.links]
        out += _table(["link", "kind", "between", "forward", "backward", "latency",
                       "overhead"], rows)
    if hw.compute:
        out.append("")
        rows = []
        for unit in hw.compute:
            for rate in unit.rates.values():
                peak = format_quantity(rate.peak, "rate")
                achievable = (format_quantity(rate.achievable, "rate")
                              if rate.achievable is not None else "-")
                if rate.unit == "op":
                    peak, achievable = (x.replace("FLOP/s", "OP/s") for x in (peak, achievable))
                rows.append([unit.name, rate.name, peak, achievable, rate.dtype or "-",
                             rate.instruction or "-"])
        out += _table(["compute", "rate", "peak", "achievable", "dtype", "instruction"], rows)
    if hw.fabric is not None:
        f = hw.fabric
        out.append("")
        out.append(f"fabric: clock {format_quantity(f.clock_hz, 'frequency')}, channels depth "
                   f"{f.channel.depth} x width {f.channel.width}, latency "
                   f"{f.channel.latency_cycles} cycles")
        rows = [[u.name, u.kind, str(u.initiation_interval), str(u.latency_cycles),
                 str(u.width), str(u.count) if u.count is not None else "any"]
                for u in f.units.values()]
        out += _table(["unit", "kind", "II", "latency", "width", "count"], rows)
    return "\n".join(out)
