"""Policy search for FlexGen-style offloading: exhaustive bound over a grid, then
branch-and-bound with the simulator.

1. **Grid.** GPU batch size × GPU batches per block × placement fractions of weights and KV
   cache on gpu/cpu in steps of ``step`` (the rest on disk) × activations all on gpu or all on
   cpu (FlexGen's runtime does not keep activations on disk) × attention on GPU or on the CPU
   (``cpu_attention``, only with no cache on the GPU).
2. **Bound.** For every grid point (numpy-vectorised over the placements) the time of one
   iteration is bounded below by the largest of its resource loads and chain lengths (the same
   chains :func:`.flexgen.iteration_chains` gives the simulator); decode is bounded at the mean
   context, which is a lower bound of the sum over contexts because the per-iteration bound is
   convex (a max of affine functions) in the context length. Placements whose peak memory
   exceeds a device's capacity are dropped.
3. **Branch and bound.** Candidates are simulated (:func:`.flexgen_sim.simulate_policy`) in
   increasing order of their bound on time per generated token; the search stops when the next
   bound is no better than the best simulated time (it cannot win), or after ``max_simulations``.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from ..errors import InputError
from ..llm.model import ModelSpec
from .flexgen import RESOURCES, FlexGenCosts, Policy, iteration_chains
from .flexgen_sim import FlexGenRun, peak_memory, simulate_policy

__all__ = ["SearchResult", "search_policy", "GPU_BATCHES", "NUM_GPU_BATCHES"]

GPU_BATCHES = (1, 2, 4, 8, 12, 16, 24, 32, 48, 64)
NUM_GPU_BATCHES = (1, 2, 3, 4, 6, 8, 12, 16)


@dataclass(frozen=True)
class SearchResult:
    """The best policy found, its simulated run, and how the search went."""

    best: FlexGenRun
    evaluated: int          # grid points whose bound was computed
    feasible: int           # of those, the ones that fit in memory
    simulated: int          # candidates simulated by branch-and-bound
    proven: bool            # True if the search stopped on the bound (optimal on the grid)


def _bound(model, costs, q, stage, context, dtype_bytes):
    chains = iteration_chains(model, q, costs, stage, context, dtype_bytes)
    load = {r: 0.0 for r in RESOURCES}
    longest = 0.0
    for steps in chains:
        total = 0.0
        for resource, seconds, _, _ in steps:
            load[resource] = load[resource] + seconds
            total = total + seconds
        longest = np.maximum(longest, total)
    out = longest
    for v in load.values():
        out = np.maximum(out, v)
    return out


def search_policy(model: ModelSpec, costs: FlexGenCosts, prompt_len: int, gen_len: int,
                  capacities: dict, step: float = 0.1, gpu_batches=GPU_BATCHES,
                  num_gpu_batches=NUM_GPU_BATCHES, max_simulations: int = 64,
                  dtype_bytes: float = 2.0) -> SearchResult:
    """Best policy (highest generation throughput) on the grid; see the module docstring."""
    n = int(round(1 / step))
    if n < 1 or abs(n * step - 1) > 1e-9:
        raise InputError(f"search step must divide 1 (e.g. 0.1, 0.2, 0.25), got {step}")
    fr = [(a / n, b / n) for a in range(n + 1) for b in range(n + 1 - a)]
    W = np.array([[w[0], w[1], c[0], c[1]] for w in fr for c in fr])
    mean_ctx = prompt_len + gen_len / 2.0
    cands = []
    evaluated = 0
    for gbs, ng, (hg, hc), cpu_att in itertools.product(gpu_batches, num_gpu_batches,
                                                        ((1.0, 0.0), (0.0, 1.0)), (False, True)):
        sel = W if not cpu_att else W[W[:, 2] == 0]
        q = SimpleNamespace(gpu_batch=gbs, num_gpu_batches=ng, wg=sel[:, 0], wc=sel[:, 1],
                            cg=sel[:, 2], cc=sel[:, 3], hg=hg, hc=hc, cpu_attention=cpu_att)
        evaluated += len(sel)
        peaks = peak_memory(model, q, prompt_len, gen_len, dtype_bytes)
        ok = np.ones(len(sel), bool)
        for dev, cap in capacities.items():
            if cap is not None:
                ok &= np.broadcast_to(peaks[dev] <= cap, ok.shape)
        if not ok.any():
            continue
        per_layer = model.layers * ng
        t = per_layer * (_bound(model, costs, q, "prefill", prompt_len, dtype_bytes)
                         + (gen_len - 1) * _bound(model, costs, q, "decode", mean_ctx,
                                                  dtype_bytes))
        per_token = np.broadcast_to(t, ok.shape) / (gbs * ng * gen_len)
        for i in np.nonzero(ok)[0]:
            cands.append((float(per_token[i]), gbs, ng, *sel[i], hg, hc, cpu_att))
    if not cands:
        raise InputError(f"no policy on the grid fits {model.name} with prompt {prompt_len} and "
                         f"{gen_len} generated tokens in the memory of this hardware")
    cands.sort(key=lambda c: c[0])
    best: FlexGenRun | None = None
    simulated = 0
    proven = False
    for bound, gbs, ng, wg, wc, cg, cc, hg, hc, cpu_att in cands:
        if best is not None and bound >= 1.0 / best.throughput:
            proven = True
            break
        if simulated >= max_simulations:
            break
        pol = Policy(gbs, ng, float(wg), float(wc), float(cg), float(cc), hg, hc, cpu_att)
        run = simulate_policy(model, costs, pol, prompt_len, gen_len, None, dtype_bytes)
        simulated += 1
        if best is None or run.throughput > best.throughput:
            best = run
    else:
        proven = True
    return SearchResult(best, evaluated, len(cands), simulated, proven)
