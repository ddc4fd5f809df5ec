"""LLM in a flash (Alizadeh et al., arXiv:2312.11514): FFN neurons on flash, loaded on demand.

Per generated token (batch 1), with the techniques of the paper's Table 2:

- **naive**: every parameter is read from flash (large sequential reads);
- **hybrid**: half of the model stays in DRAM, the other half is read every token;
- **predictor**: attention, embeddings and the low-rank predictors stay in DRAM
  ("selective persistence"); of the FFN only the neurons the predictor selects are read: for
  neuron ``i`` the ``i``-th up-projection column and down-projection row, ``d_model`` elements
  each (two reads);
- **windowing** (k): neurons used by the last k tokens stay in DRAM; only newly needed neurons
  are read (``s_agg(k+1) - s_agg(k)`` of the FFN);
- **bundling**: column i and row i are stored together, one read of ``2·d_model·bytes``.

I/O time comes from the storage model (:class:`memsim.storage.StorageDevice`) at the request
size and the paper's 32 reader threads. Memory management is the paper's data structure
(Sec. 3.3): deleting c neurons copies c rows (the last rows move into the holes), inserting n
neurons writes n rows, each row ``2·d_model·bytes``, at ``copy_bandwidth``. Compute is the
token's FLOPs at ``compute_rate`` (dense layers + predictor + the FFN rows resident in DRAM,
which the paper's inference multiplies with).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import simpy

from ..errors import InputError
from ..llm.model import ModelSpec
from ..storage.device import StorageDevice, StorageResources

__all__ = ["Techniques", "FlashTokenCost", "predictor_params", "ffn_params", "run_llm_in_flash",
           "simulate_token_reads", "NeuronCache", "CacheStep", "DENSE_CHUNK_BYTES", "FALCON_COPY_BANDWIDTH",
           "OPT_CPU_RATE", "TABLE2_ROWS"]

DENSE_CHUNK_BYTES = 16 * 2**20
"""Request size of dense (non-sparse) reads: whole weight matrices, read in 16 MiB requests."""

# The paper's Falcon 7B CPU row (Table 3: memory management 92 ms; Sec 3.1: 3.1% of FFN neurons
# new per token; fp32 rows of 2 x 4544 x 4 B; 32 layers x 18176 neurons): every new neuron is
# one row inserted and, in steady state, one row deleted.
FALCON_COPY_BANDWIDTH = 2 * 0.031 * 32 * 18176 * (2 * 4544 * 4) / 0.092
"""Effective bandwidth (B/s) of the paper's DRAM row copies on the M1 Max CPU, calibrated on
Falcon 7B (about 14.25 GB/s); OPT 6.7B's memory-management time is then a prediction."""

OPT_CPU_RATE = None    # computed lazily from the OPT-6.7B preset: see cpu_rate_from_naive()

TABLE2_ROWS = {
    "naive": dict(hybrid=False, predictor=False, window=0, bundling=False),
    "hybrid": dict(hybrid=True, predictor=False, window=0, bundling=False),
    "predictor": dict(hybrid=True, predictor=True, window=0, bundling=False),
    "windowing": dict(hybrid=True, predictor=True, window=5, bundling=False),
    "bundling": dict(hybrid=True, predictor=True, window=5, bundling=True),
}
"""The technique combinations of Table 2, in its row order (window k = 5, as v1/v2 and Fig. 4)."""


@dataclass(frozen=True)
class Techniques:
    """Which of the paper's techniques are on; ``window`` 0 = no windowing."""

    hybrid: bool = True
    predictor: bool = True
    window: int = 5
    bundling: bool = True

    def __post_init__(self) -> None:
        if self.window < 0:
            raise InputError(f"window must be >= 0, got {self.window}")
        if (self.window or self.bundling) and not self.predictor:
            raise InputError("windowing and bundling need the predictor (predictor: true)")


def ffn_params(model: ModelSpec) -> int:
    """FFN parameters of all layers (up and down projections with their biases)."""
    h, f = model.hidden, model.ffn.size
    per = 2 * h * f + (f + h if model.bias else 0)
    return model.layers * per


def predictor_params(model: ModelSpec) -> int:
    """Low-rank predictor parameters: rank 128 for all but the last 4 layers, 1024 there
    (the paper's OPT predictors), each ``r·(d_model + d_ffn)``."""
    ranks = [128] * max(0, model.layers - 4) + [1024] * min(4, model.layers)
    return sum(r * (model.hidden + model.ffn.size) for r in ranks)


def dense_flops(model: ModelSpec) -> float:
    """FLOPs of one decode token without sparsity (all linear layers and the LM head)."""
    return 2.0 * (model.linear_params() + model.vocab * model.hidden)


def cpu_rate_from_naive(model: ModelSpec, compute_s: float = 0.986) -> float:
    """Effective rate calibrated on the paper's Naive row (OPT 6.7B on the M1 Max CPU:
    986 ms of compute per token for the dense model)."""
    return dense_flops(model) / compute_s


@dataclass(frozen=True)
class FlashTokenCost:
    """Average cost of one token in steady state (SI units) and what it moved."""

    techniques: Techniques
    dtype_bytes: float
    chunk_bytes: int
    requests: float              # flash reads per token
    flash_bytes: float           # flash -> DRAM bytes per token
    dram_bytes: float            # model bytes resident in DRAM (average)
    io_s: float
    mem_s: float
    compute_s: float

    @property
    def total_s(self) -> float:
        return self.io_s + self.mem_s + self.compute_s

    @property
    def throughput(self) -> float:
        return self.flash_bytes / self.io_s if self.io_s > 0 else 0.0


def run_llm_in_flash(model: ModelSpec, device: StorageDevice, tech: Techniques,
                     trace: np.ndarray | None, dtype_bytes: float = 2.0, threads: int = 32,
                     copy_bandwidth: float = FALCON_COPY_BANDWIDTH,
                     compute_rate: float | None = None) -> FlashTokenCost:
    """Per-token cost under ``tech``; ``trace`` is ``[tokens, layers, neurons]`` (predictor
    selections, see :mod:`.neuron_trace`), needed when the predictor is on. Averages are over
    the tokens after the first ``window`` (steady state)."""
    e = dtype_bytes
    total_bytes = model.params() * e
    ffn_b = ffn_params(model) * e
    pred_b = predictor_params(model) * e if tech.predictor else 0.0
    rate = compute_rate or cpu_rate_from_naive(model)
    row_elems = model.hidden
    if not tech.predictor:
        dram = total_bytes / 2 if tech.hybrid else 0.0
        flash = total_bytes - dram
        chunk = DENSE_CHUNK_BYTES
        requests = flash / chunk
        mem_s = 0.0
        ffn_rows_computed = model.layers * model.ffn.size
    else:
        if trace is None:
            raise InputError("the predictor technique needs a neuron trace")
        tokens, layers, neurons = trace.shape
        if (layers, neurons) != (model.layers, model.ffn.size):
            raise InputError(f"trace shape {trace.shape} does not match {model.name} "
                             f"({model.layers} layers x {model.ffn.size} neurons)")
        k = tech.window
        start = max(k, 1)
        if tokens <= start:
            raise InputError(f"trace has {tokens} tokens, expected more than {start}")
        cache = NeuronCache(layers, neurons, k)
        loads, resident, deleted, computed = [], [], [], []
        for t in range(tokens):
            step = cache.step(trace[t])
            if t >= start:
                loads.append(step.loaded)
                deleted.append(step.deleted)
                resident.append(step.resident_after)
                computed.append(step.computed)
        n_load = float(np.mean(loads))
        per_neuron = 2 * row_elems * e
        chunk = int(per_neuron if tech.bundling else row_elems * e)
        requests = n_load * (1 if tech.bundling else 2)
        flash = n_load * per_neuron
        dram = total_bytes - ffn_b + pred_b + float(np.mean(resident)) * per_neuron
        mem_s = (float(np.mean(deleted)) + n_load) * per_neuron / copy_bandwidth
        ffn_rows_computed = float(np.mean(computed))
    io_s = device.read_time(flash, chunk, threads) if flash > 0 else 0.0
    flops = (dense_flops(model) - 2.0 * 2 * model.hidden * model.ffn.size * model.layers
             + 2.0 * 2 * model.hidden * ffn_rows_computed
             + (2.0 * predictor_params(model) if tech.predictor else 0.0))
    return FlashTokenCost(tech, e, chunk, requests, flash, dram, io_s, mem_s, flops / rate)


@dataclass(frozen=True)
class CacheStep:
    """What one token did to the DRAM neuron cache (counts over all layers)."""

    loaded: int             # neurons read from flash
    deleted: int            # rows deleted after the token (out of the window)
    computed: int           # rows the FFN multiplies with (resident during the token)
    resident_after: int
    load_mask: np.ndarray = field(compare=False, repr=False, default=None)   # [layers, neurons]


class NeuronCache:
    """The paper's DRAM structure, per layer, as the set of resident neurons with the token
    that last used each: a token loads its needed neurons that are not resident (inserted at
    the end of the matrix), multiplies with all resident rows, then deletes the rows not used
    in the last ``window`` tokens (window 0: keeps nothing)."""

    def __init__(self, layers: int, neurons: int, window: int):
        self.window = window
        self.last_used = np.full((layers, neurons), -(2**40), dtype=np.int64)
        self.resident = np.zeros((layers, neurons), bool)
        self.t = 0

    def step(self, needed: np.ndarray) -> CacheStep:
        load = needed & ~self.resident
        self.resident |= load
        computed = int(self.resident.sum())
        self.last_used[needed] = self.t
        keep = self.last_used > self.t - self.window
        deleted = int((self.resident & ~keep).sum())
        self.resident &= keep
        self.t += 1
        return CacheStep(int(load.sum()), deleted, computed, int(self.resident.sum()), load)


def simulate_token_reads(device: StorageDevice, chunk_bytes: int, requests: int,
                         threads: int = 32) -> tuple[float, int, int]:
    """Issue ``requests`` flash reads of ``chunk_bytes`` from ``threads`` reader threads
    (a shared work queue) through the simpy device; returns (time, bytes read, reads)."""
    env = simpy.Environment()
    res = StorageResources(env, device)
    remaining = [requests]

    def reader():
        while remaining[0] > 0:
            remaining[0] -= 1
            yield env.process(res.request(chunk_bytes))

    for _ in range(threads):
        env.process(reader())
    env.run()
    return env.now, res.read_bytes, res.requests
