"""The ``sdpa_stream`` workload kind: one SDPA head on a streaming dataflow fabric.

    hardware: dataflow
    workload:
      kind: sdpa_stream
      seq: 1024              # N keys (and queries unless seq_q)
      head_dim: 64
      variant: reordered     # naive | reordered
      lanes: 64              # optional: scores per cycle (default: the fabric's channel width)
      seq_q: 1024            # optional: query rows simulated
      buffer_depth: 80       # optional: entries of the naive row buffer (exp->div)
      depths: {qk->exp: 4}   # optional: per-FIFO depth overrides (entries)
      dtype: fp32            # bytes counted per element (numerics run in float64)
      seed: 0
      check: true            # compare the outputs with numpy attention

No schedule section: the dataflow graph is the schedule. The result carries the contract keys
and a ``dataflow`` section: per-FIFO peak occupancy, throughput against the fabric's peak, and
the numerical error. A FIFO too shallow to run is a ``DeadlockError`` (exit code 2).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from .. import __version__
from ..dtypes import DTYPES, dtype_bytes
from ..errors import InputError
from ..result import LevelTraffic, Result, Roofline
from .analysis import max_relative_error
from .sdpa import VARIANTS, SdpaParams, SdpaRun, make_inputs, run_sdpa

__all__ = ["SdpaStreamWorkload", "DataflowResult", "simulate_sdpa_stream", "run_config"]


@dataclass(frozen=True)
class SdpaStreamWorkload:
    """A validated ``sdpa_stream`` workload."""

    params: SdpaParams
    dtype: str = "fp32"
    check: bool = True

    @classmethod
    def from_node(cls, node) -> "SdpaStreamWorkload":
        node.req("kind", str)
        depths = node.opt("depths", dict, {})
        for name, value in depths.items():
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise node.error("depths", f"depth of FIFO {name!r} is {value!r}, expected a "
                                           f"positive number of entries")
        params = SdpaParams(
            seq=node.req("seq", int, positive=True),
            head_dim=node.req("head_dim", int, positive=True),
            variant=node.opt("variant", VARIANTS, "reordered"),
            lanes=node.opt("lanes", int, None, positive=True),
            seq_q=node.opt("seq_q", int, None, positive=True),
            buffer_depth=node.opt("buffer_depth", int, None, positive=True),
            depths={str(k): v for k, v in depths.items()},
            seed=node.opt("seed", int, 0, nonnegative=True))
        workload = cls(params, dtype=node.opt("dtype", DTYPES, "fp32"),
                       check=node.opt("check", bool, True))
        node.close()
        return workload

    @property
    def flops(self) -> float:
        """Useful FLOPs: q k^T and p v, 2 d FLOPs per score each."""
        p = self.params
        return 4.0 * (p.seq_q or p.seq) * p.seq * p.head_dim

    def to_dict(self) -> dict:
        p = self.params
        out = {"kind": "sdpa_stream", "seq": p.seq, "seq_q": p.seq_q or p.seq,
               "head_dim": p.head_dim, "variant": p.variant, "lanes": p.lanes,
               "buffer_depth": p.buffer_depth, "seed": p.seed, "dtype": self.dtype,
               "check": self.check}
        if p.depths:
            out["depths"] = dict(p.depths)
        return out


@dataclass(frozen=True)
class DataflowResult(Result):
    """A ``Result`` with ``to_dict()['dataflow']``: FIFO peaks, throughput, numerical error."""

    dataflow: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def to_dict(self) -> dict:
        out = super().to_dict()
        out["dataflow"] = dict(self.dataflow)
        return out

    def to_table(self) -> str:
        df = self.dataflow
        lines = [super().to_table(), "",
                 f"dataflow  {df['variant']}: {df['cycles']} cycles, {df['peak_fraction']:.1%} "
                 f"of peak ({df['outputs_per_cycle']:.4g} of {df['peak_outputs_per_cycle']:.4g}"
                 f" outputs/cycle), intermediate memory {df['intermediate_peak_elements']} "
                 f"elements"]
        if df.get("max_rel_error") is not None:
            lines.append(f"numerics  max |out - numpy| / max|numpy| = {df['max_rel_error']:.3g}")
        lines += ["", f"{'fifo':<18} {'depth':>6} {'peak':>6} {'peak elems':>11} {'tokens':>10}"]
        for name, c in df["fifos"].items():
            lines.append(f"{name:<18} {c['depth_entries']:>6} {c['peak_entries']:>6} "
                         f"{c['peak_elements']:>11} {c['tokens']:>10}")
        return "\n".join(lines)


def _result(hardware_name: str, hardware, workload: SdpaStreamWorkload, run: SdpaRun,
            error: float | None) -> DataflowResult:
    p = workload.params
    size = dtype_bytes(workload.dtype)
    fifos = run.fabric.channels
    streamed = sum(c["elements"] for c in fifos.values() if not c["intermediate"]
                   and c["producer"] and c["producer"].endswith("_src"))
    moved = sum(c["elements"] for c in fifos.values() if c["intermediate"])
    allocated = sum(c["depth_entries"] * c["token_elements"] for c in fifos.values()
                    if c["intermediate"])
    rows = run.rows
    levels = {"fifo": LevelTraffic(round(moved * size), round(moved * size),
                                   round(run.intermediate_peak_elements() * size),
                                   round(allocated * size))}
    if hardware.has_memory("dram"):
        dram = hardware.memory("dram")
        levels["dram"] = LevelTraffic(round(streamed * size), round(rows * p.head_dim * size),
                                      round((rows + 3 * p.seq) * p.head_dim * size),
                                      dram.total_capacity_bytes)
    clock = run.fabric.clock_hz
    name, peak = run.max_fifo()
    dataflow = {
        "variant": p.variant, "lanes": run.lanes, "tokens_per_row": run.tokens_per_row,
        "cycles": run.cycles, "ideal_cycles": run.ideal_cycles,
        "peak_fraction": run.peak_fraction, "outputs_per_cycle": run.outputs_per_cycle,
        "peak_outputs_per_cycle": run.peak_outputs_per_cycle,
        "intermediate_peak_elements": run.intermediate_peak_elements(),
        "max_fifo": {"name": name, "peak_elements": peak},
        "max_rel_error": error, "events": run.fabric.events,
        "fifos": fifos, "units": run.fabric.units,
    }
    return DataflowResult(
        memsim_version=__version__, hardware=hardware_name, workload=workload.to_dict(),
        schedule={"kind": f"dataflow_{p.variant}", "lanes": run.lanes,
                  "tokens_per_row": run.tokens_per_row},
        time_s=run.cycles / clock, flops=workload.flops, levels=levels,
        roofline=Roofline(run.ideal_cycles / clock, "compute", "fabric"),
        useful_flops=workload.flops, dataflow=dataflow)


def simulate_sdpa_stream(config) -> DataflowResult:
    """The ``sdpa_stream`` kind's simulate function (``RunConfig -> Result``)."""
    hardware = config.hardware
    if hardware.fabric is None:
        raise InputError(f"workload kind 'sdpa_stream' needs hardware with a 'fabric' section "
                         f"(e.g. the 'dataflow' preset); {config.hardware_name!r} has none")
    workload: SdpaStreamWorkload = config.workload
    inputs = make_inputs(workload.params)
    run = run_sdpa(hardware.fabric, workload.params, inputs=inputs)
    error = max_relative_error(run, inputs) if workload.check else None
    return _result(config.hardware_name, hardware, workload, run, error)


def run_config(config: Mapping) -> dict:
    """Run a configuration given as plain data and return the result as a dict."""
    from ..simulate import simulate
    return simulate(config).to_dict()
