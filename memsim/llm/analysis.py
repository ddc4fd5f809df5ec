"""Analyse an LLM workload on a machine: per-operator roofline tables of prefill and decode,
stage totals, time per output token, tokens/s and the memory footprint.

Decode steps: step ``i`` (0-based) attends to ``context_i = prompt_len + i + 1`` keys. Only the
attention operators depend on the context, so the other operators are costed once and the
attention operators of every step are costed exactly (the roofline is a closed form, so all
steps are cheap). When an operator simulator is given (``simulate_op``, see
:mod:`memsim.llm.simulate`), each *distinct* operator shape is simulated once (a cache keyed by
shape), and decode attention is simulated at ``decode_samples`` contexts spread evenly from the
first to the last step; the other steps take the piecewise-linear interpolation in context
between the two nearest samples (attention work and bytes are affine in the context).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np

from .footprint import Footprint, check_fits, footprint
from .operators import (ATTENTION_KINDS, MEMORY_KERNEL_KINDS, Operator, attention_operators,
                        decode_operators, prefill_operators)
from .roofline import OpCost, RooflineMachine, format_table, roofline, stage_totals
from .workload import LlmWorkload

__all__ = ["LlmReport", "analyse", "decode_contexts", "sample_contexts", "attended_per_step"]

SimulateOp = Callable[[Operator], "float | None"]
"""Simulated time (s) of one operator instance, or None where the simulator has no model."""


def decode_contexts(wl: LlmWorkload) -> np.ndarray:
    """Keys attended by each decode step: ``prompt_len + 1 … prompt_len + gen_len``."""
    return wl.prompt_len + 1 + np.arange(wl.gen_len)


def attended_per_step(wl: LlmWorkload) -> np.ndarray:
    """Tokens each decode step's attention reads per sequence (the KV policy's attended
    states, else the cached context)."""
    ctx = decode_contexts(wl)
    p = wl.kv_policy
    if p is None or p.name == "full":
        return np.array([wl.cached_tokens(int(c)) for c in ctx])
    return np.array([p.attended_tokens(wl.prompt_len, i) for i in range(wl.gen_len)])


def sample_contexts(wl: LlmWorkload) -> list[int]:
    """The decode contexts simulated exactly: ``decode_samples`` points from first to last,
    plus every step where the attended tokens stop (or start) growing linearly (a sliding
    window or an eviction budget is reached), so that interpolation between samples follows
    the kinks of ``attended_per_step``."""
    ctx = decode_contexts(wl)
    n = min(wl.decode_samples, len(ctx))
    idx = set(np.round(np.linspace(0, len(ctx) - 1, n)).astype(int).tolist())
    att = attended_per_step(wl)
    if len(att) > 2:
        idx |= set((np.nonzero(np.diff(att, 2))[0] + 1).tolist())
    return [int(ctx[i]) for i in sorted(idx)]


@dataclass(frozen=True)
class LlmReport:
    """Everything the analysis of one LLM workload produced (times in seconds)."""

    workload: LlmWorkload
    machine: RooflineMachine
    prefill: tuple[OpCost, ...]
    decode_first: tuple[OpCost, ...]          # the first decode step (context prompt_len + 1)
    decode_step_times_s: np.ndarray           # roofline time of every decode step
    footprint: Footprint
    prefill_sim_s: Mapping[str, float] = field(default_factory=dict)   # per op instance
    decode_sim_s: Mapping[str, float] = field(default_factory=dict)    # first step
    decode_step_sim_s: np.ndarray | None = None

    # -- totals ---------------------------------------------------------------------------------
    @property
    def prefill_time_s(self) -> float:
        """Roofline prefill latency (time to first token without queueing)."""
        return stage_totals(self.prefill)["time_s"]

    @property
    def decode_time_s(self) -> float:
        """Roofline time of all decode steps."""
        return float(self.decode_step_times_s.sum())

    def tpot_s(self, context: int | None = None) -> float:
        """Roofline time per output token at ``context`` keys (default: the first step)."""
        if context is None:
            return float(self.decode_step_times_s[0])
        return decode_step_time(self.workload, self.machine, context)

    @property
    def tokens_per_s(self) -> float:
        """Decode throughput: ``batch · gen_len`` tokens over the decode time."""
        return self.workload.batch * self.workload.gen_len / self.decode_time_s

    @property
    def simulated(self) -> bool:
        return self.decode_step_sim_s is not None

    def _sim_stage(self, costs: Sequence[OpCost], sims: Mapping[str, float]) -> float:
        return sum(sims.get(c.op.name, c.time_s) * c.op.count for c in costs)

    @property
    def sim_prefill_time_s(self) -> float | None:
        return self._sim_stage(self.prefill, self.prefill_sim_s) if self.simulated else None

    @property
    def sim_decode_time_s(self) -> float | None:
        return float(self.decode_step_sim_s.sum()) if self.simulated else None

    # -- output ---------------------------------------------------------------------------------
    def totals(self) -> dict:
        """Stage totals, per-token figures and footprint as plain data."""
        wl = self.workload
        out = {
            "prefill": {**stage_totals(self.prefill)},
            "decode_first_step": {**stage_totals(self.decode_first)},
            "decode": {"steps": wl.gen_len, "time_s": self.decode_time_s,
                       "tpot_first_s": self.tpot_s(),
                       "tpot_last_s": float(self.decode_step_times_s[-1]),
                       "tpot_mean_s": self.decode_time_s / wl.gen_len,
                       "tokens_per_s": self.tokens_per_s},
            "end_to_end_s": self.prefill_time_s + self.decode_time_s,
            "footprint": self.footprint.to_dict(),
        }
        if self.simulated:
            out["simulated"] = {"prefill_s": self.sim_prefill_time_s,
                                "decode_s": self.sim_decode_time_s,
                                "tpot_first_s": float(self.decode_step_sim_s[0]),
                                "tokens_per_s": wl.batch * wl.gen_len / self.sim_decode_time_s,
                                "decode_samples": sample_contexts(wl)}
        return out

    def operators(self) -> list[dict]:
        """The per-operator rows of prefill and the first decode step."""
        rows = []
        for costs, sims in ((self.prefill, self.prefill_sim_s),
                            (self.decode_first, self.decode_sim_s)):
            for c in costs:
                op = c.op
                rows.append({"stage": op.stage, "name": op.name, "kind": op.kind,
                             "count": op.count, "flops": op.flops, "bytes": op.bytes,
                             "weight_bytes": op.weight_bytes,
                             "act_bytes": op.act_read_bytes + op.act_write_bytes,
                             "kv_read_bytes": op.kv_read_bytes,
                             "kv_write_bytes": op.kv_write_bytes,
                             "intensity": op.intensity, "bound": c.bound, "time_s": c.time_s,
                             "simulated_time_s": sims.get(op.name)})
        return rows

    def to_dict(self) -> dict:
        return {"machine": {"name": self.machine.name, "bandwidth": self.machine.bandwidth,
                            "tensor_flops": self.machine.tensor_flops,
                            "vector_flops": self.machine.vector_flops},
                "totals": self.totals(), "operators": self.operators()}

    def to_table(self) -> str:
        """Both per-operator tables and the totals, for ``memsim run --format table``."""
        wl, t = self.workload, self.totals()
        gib = 2**30
        fp = self.footprint
        lines = [f"model     {wl.model.name}  batch {wl.batch}  prompt {wl.prompt_len}  "
                 f"gen {wl.gen_len}  weights {wl.weight_dtype}"
                 + (f" ({wl.weight_quant.bits}-bit g{wl.weight_quant.group})"
                    if wl.weight_quant else "")
                 + f"  kv {wl.kv_dtype}  act {wl.act_dtype}"
                 + (f"  kv_policy {wl.kv_policy!r}" if wl.kv_policy else ""),
                 f"machine   {self.machine.name}: {self.machine.bandwidth / 1e9:.0f} GB/s, "
                 f"{self.machine.tensor_flops / 1e12:.1f} TFLOP/s tensor, ridge "
                 f"{self.machine.ridge:.1f} FLOP/B",
                 "", f"prefill ({wl.prefill_schedule} attention)",
                 format_table(self.prefill, self.prefill_sim_s or None),
                 "", f"decode step at context {wl.prompt_len + 1} ({wl.decode_schedule} "
                     "attention)",
                 format_table(self.decode_first, self.decode_sim_s or None), "",
                 f"prefill latency      {t['prefill']['time_s'] * 1e3:.3f} ms (roofline)",
                 f"time per out token   {t['decode']['tpot_first_s'] * 1e3:.3f} ms at context "
                 f"{wl.prompt_len + 1}, {t['decode']['tpot_last_s'] * 1e3:.3f} ms at "
                 f"{wl.max_len}",
                 f"decode throughput    {t['decode']['tokens_per_s']:.1f} tokens/s",
                 f"footprint ({fp.level})     weights {fp.weights / gib:.2f} GiB, KV cache "
                 f"{fp.kv_cache / gib:.2f} GiB, activations {fp.activations / gib:.2f} GiB of "
                 f"{fp.capacity / gib:.1f} GiB"]
        if self.simulated:
            s = t["simulated"]
            lines += [f"simulated            prefill {s['prefill_s'] * 1e3:.3f} ms, decode "
                      f"{s['decode_s'] * 1e3:.3f} ms ({s['tokens_per_s']:.1f} tokens/s); "
                      f"decode attention simulated at contexts {s['decode_samples']}"]
        return "\n".join(lines)


def decode_step_time(wl: LlmWorkload, machine: RooflineMachine, context: int) -> float:
    """Roofline time of one decode step at ``context`` keys."""
    return stage_totals(roofline(decode_operators(wl, context), machine))["time_s"]


def analyse(wl: LlmWorkload, machine: RooflineMachine, capacity: float | None = None,
            simulate_op: SimulateOp | None = None, check: bool = True) -> LlmReport:
    """Roofline (and, with ``simulate_op``, simulated) analysis of ``wl``.

    ``capacity``: bytes of the level holding weights and KV cache; with ``check`` a model that
    does not fit raises ``CapacityError`` with the numbers.
    """
    fp = footprint(wl, capacity if capacity is not None else float("inf"))
    if check and capacity is not None:
        check_fits(fp)
    prefill = tuple(roofline(prefill_operators(wl), machine))
    contexts = decode_contexts(wl)
    first = tuple(roofline(decode_operators(wl, int(contexts[0])), machine))
    fixed = sum(c.total_time_s for c in first if c.op.kind not in ATTENTION_KINDS)
    attn_roof = np.array([sum(c.total_time_s for c in roofline(
        attention_operators(wl, "decode", 1, int(ctx)), machine)) for ctx in contexts])
    steps = fixed + attn_roof
    if simulate_op is None:
        return LlmReport(wl, machine, prefill, first, steps, fp)

    cache: dict = {}

    def sim(op: Operator) -> float | None:
        key = op.shape or (("kernel", op.bytes) if op.kind in MEMORY_KERNEL_KINDS else None)
        if key is None:
            return None
        if key not in cache:
            cache[key] = simulate_op(op)
        return cache[key]

    prefill_sim = {c.op.name: t for c in prefill if (t := sim(c.op)) is not None}
    decode_sim = {c.op.name: t for c in first if (t := sim(c.op)) is not None}
    fixed_sim = sum(decode_sim.get(c.op.name, c.time_s) * c.op.count for c in first
                    if c.op.kind not in ATTENTION_KINDS)
    # simulated minus roofline attention time at the sampled contexts, interpolated; every
    # step keeps its exact roofline part (operators the simulator declines, e.g. KIVI's
    # mixed-precision attention with its periodic chunk quantization, stay exact)
    samples = sample_contexts(wl)
    delta = []
    for ctx in samples:
        costs = roofline(attention_operators(wl, "decode", 1, ctx), machine)
        delta.append(sum((t - c.time_s) * c.op.count for c in costs
                         if (t := sim(c.op)) is not None))
    attn = attn_roof + (np.interp(contexts, samples, delta) if len(samples) > 1 else delta[0])
    return LlmReport(wl, machine, prefill, first, steps, fp, prefill_sim, decode_sim,
                     fixed_sim + attn)
