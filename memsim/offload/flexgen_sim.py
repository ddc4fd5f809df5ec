"""The zig-zag block schedule of FlexGen (Algorithm 1) simulated in simpy.

    for i in 1..gen_len:                         (i = 0 is the prefill of the prompt)
      for j in 1..num_layers:
        for k in 1..num_gpu_batches:
          load_weight(i, j+1, k); store_activation(i, j, k-1); store_cache(i, j, k-1)
          load_cache(i, j, k+1); load_activation(i, j, k+1); compute(i, j, k)
          synchronize()

Each iteration starts its chains (:func:`.flexgen.iteration_chains`) as simpy processes on the
resources ``gpu``, ``cpu``, ``pcie_h2d``, ``pcie_d2h`` and ``ssd`` (FIFO, one at a time) and
ends when all have finished (``synchronize``). Because of that barrier, iterations with the same
chains take the same time: each distinct iteration (prefill, or decode at one context length)
is simulated once and multiplied by its count (``layers × num_gpu_batches``); bytes and busy
times are multiplied the same way, so they are exact.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import simpy

from ..errors import CapacityError
from ..llm.model import ModelSpec
from .flexgen import RESOURCES, FlexGenCosts, Policy, iteration_chains

__all__ = ["FlexGenRun", "IterationRun", "simulate_iteration", "simulate_policy",
           "peak_memory"]


@dataclass(frozen=True)
class IterationRun:
    """One simulated iteration: its time, busy seconds per resource, bytes per route."""

    time_s: float
    busy_s: dict
    bytes: dict


def simulate_iteration(chains: list[list[tuple]], resources=RESOURCES) -> IterationRun:
    """Run the chains of one iteration concurrently in a fresh simpy environment; each step
    ``(resource, seconds, bytes, route)`` holds its resource (FIFO, one at a time)."""
    env = simpy.Environment()
    res = {name: simpy.Resource(env, 1) for name in resources}
    busy: dict = defaultdict(float)
    moved: dict = defaultdict(float)

    def chain(steps):
        for resource, seconds, nbytes, route in steps:
            seconds = float(seconds)
            if seconds <= 0:
                continue
            with res[resource].request() as req:
                yield req
                yield env.timeout(seconds)
            busy[resource] += seconds
            if route:
                moved[route] += float(nbytes)

    procs = [env.process(chain(steps)) for steps in chains]
    env.run(simpy.AllOf(env, procs))
    return IterationRun(env.now, dict(busy), dict(moved))


@dataclass
class FlexGenRun:
    """A simulated generation: times, throughput, busy time per resource, bytes per route."""

    policy: Policy
    prompt_len: int
    gen_len: int
    prefill_s: float = 0.0
    decode_s: float = 0.0
    busy_s: dict = field(default_factory=lambda: defaultdict(float))
    bytes: dict = field(default_factory=lambda: defaultdict(float))
    peak_bytes: dict = field(default_factory=dict)
    iterations: int = 0

    @property
    def time_s(self) -> float:
        return self.prefill_s + self.decode_s

    @property
    def throughput(self) -> float:
        """Generation throughput (FlexGen's): generated tokens / (prefill + decode time)."""
        return self.policy.block * self.gen_len / self.time_s

    @property
    def decode_throughput(self) -> float:
        steps = self.gen_len - 1
        return self.policy.block * steps / self.decode_s if self.decode_s > 0 else 0.0


def peak_memory(model: ModelSpec, p, prompt_len: int, gen_len: int, dtype_bytes: float = 2.0
                ) -> dict:
    """Peak bytes on gpu / host / disk of a placement (FlexGen Sec 4.3's peak-memory terms):
    resident weights, KV cache of the block for ``prompt + gen`` tokens, the block's hidden
    states, plus on the GPU a prefetch buffer for the next layer's offloaded weights and the
    prefill working set of one GPU batch (QKV, attention scores, MLP intermediate)."""
    e = dtype_bytes
    bls = p.gpu_batch * p.num_gpu_batches
    weights = model.layers * model.layer_params() * e
    layer = model.layer_params() * e
    kv = bls * (prompt_len + gen_len) * model.kv_bytes_per_token(e)
    act = bls * prompt_len * model.hidden * e
    work = p.gpu_batch * prompt_len * e * (3 * model.hidden + model.heads * prompt_len
                                           + model.ffn.size)
    wd, cd, hd = 1 - p.wg - p.wc, 1 - p.cg - p.cc, 1 - p.hg - p.hc
    return {"gpu": p.wg * weights + p.cg * kv + p.hg * act + (1 - p.wg) * layer + work,
            "host": p.wc * weights + p.cc * kv + p.hc * act + (1 - p.wg) * layer,
            "disk": wd * weights + cd * kv + hd * act}


def simulate_policy(model: ModelSpec, costs: FlexGenCosts, policy: Policy, prompt_len: int,
                    gen_len: int, capacities: dict | None = None, dtype_bytes: float = 2.0
                    ) -> FlexGenRun:
    """Simulate prefill and ``gen_len - 1`` decode steps of one block under ``policy``.

    ``capacities`` ({gpu, host, disk} bytes) are checked against :func:`peak_memory`; a
    placement that does not fit raises :class:`CapacityError` naming the device."""
    peaks = peak_memory(model, policy, prompt_len, gen_len, dtype_bytes)
    for dev, cap in (capacities or {}).items():
        if cap is not None and peaks[dev] > cap:
            raise CapacityError(f"policy {policy.to_dict()} needs {peaks[dev] / 1e9:.2f} GB on "
                                f"{dev}, which has {cap / 1e9:.2f} GB")
    run = FlexGenRun(policy, prompt_len, gen_len, peak_bytes=peaks)
    per_layer = model.layers * policy.num_gpu_batches
    stages = [("prefill", prompt_len)] + [("decode", prompt_len + i) for i in range(1, gen_len)]
    for stage, context in stages:
        it = simulate_iteration(iteration_chains(model, policy, costs, stage, context,
                                                 dtype_bytes))
        if stage == "prefill":
            run.prefill_s += it.time_s * per_layer
        else:
            run.decode_s += it.time_s * per_layer
        for k, v in it.busy_s.items():
            run.busy_s[k] += v * per_layer
        for k, v in it.bytes.items():
            run.bytes[k] += v * per_layer
        run.iterations += per_layer
    return run
