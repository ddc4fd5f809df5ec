"""Memory footprint of an LLM workload per memory level, and the check that it fits.

Everything lives in ``hbm`` (offloading to host/SSD is a separate policy). Three parts:

* weights: linear matrices at the (possibly quantized) linear-weight size, everything else
  (embeddings, norms, biases, untied LM head if not quantized) at ``weight_dtype``;
* KV cache: ``batch · cached_tokens(prompt_len + gen_len) · kv_bytes_per_token`` (a sliding
  window caps the cached tokens: Mistral keeps a rolling buffer of 4096); with a KV policy,
  the largest ``step_memory_bytes`` over the decode steps (held states, the new token and
  score metadata);
* activations: the residual stream (``b·s·h``) plus the largest activation working set of one
  prefill operator (its activation inputs + outputs; with the ``standard`` schedule that is the
  ``b·heads·s²`` score matrix). Decode needs less than prefill.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import CapacityError
from .operators import prefill_operators
from .workload import LlmWorkload

__all__ = ["Footprint", "footprint", "check_fits", "weight_bytes"]

GIB = 2**30


def weight_bytes(wl: LlmWorkload) -> float:
    """Bytes of all weights: quantized linear matrices plus everything else."""
    m = wl.model
    linear = m.linear_params()
    other = m.params() - linear
    head = m.lm_head_params()
    # an untied LM head is a linear layer too: quantized with the others
    return (linear + head) * wl.linear_weight_bytes + (other - head) * wl.weight_bytes


@dataclass(frozen=True)
class Footprint:
    """Bytes held in one memory level."""

    level: str
    weights: float
    kv_cache: float
    activations: float
    capacity: float

    @property
    def total(self) -> float:
        return self.weights + self.kv_cache + self.activations

    def to_dict(self) -> dict:
        return {"level": self.level, "weights_bytes": int(self.weights),
                "kv_cache_bytes": int(self.kv_cache), "activations_bytes": int(self.activations),
                "total_bytes": int(self.total), "capacity_bytes": int(self.capacity)}


def footprint(wl: LlmWorkload, capacity: float, level: str = "hbm") -> Footprint:
    """The footprint of ``wl`` in ``level`` (of ``capacity`` bytes)."""
    m = wl.model
    kv = wl.batch * wl.cached_tokens(wl.max_len) * m.kv_bytes_per_token(wl.kv_bytes)
    if wl.kv_policy is not None:        # the most resident while any decode step runs
        kv = max(wl.kv_policy.step_memory_bytes(m, wl.kv_dtype, wl.prompt_len, i, wl.batch)
                 for i in range(wl.gen_len))
    stream = wl.batch * wl.prompt_len * m.hidden * wl.act_bytes
    largest = max(op.act_read_bytes + op.act_write_bytes for op in prefill_operators(wl))
    return Footprint(level, weight_bytes(wl), kv, stream + largest, capacity)


def check_fits(fp: Footprint) -> None:
    """Raise ``CapacityError`` with the numbers when the footprint does not fit its level."""
    cap = fp.capacity
    name = fp.level
    if fp.weights > cap:
        raise CapacityError(f"weights need {fp.weights / GIB:.1f} GiB; {name} has "
                            f"{cap / GIB:.1f} GiB")
    left = cap - fp.weights
    if fp.kv_cache > left:
        raise CapacityError(f"KV cache needs {fp.kv_cache / GIB:.1f} GiB; {name} has "
                            f"{left / GIB:.1f} GiB left after weights")
    left -= fp.kv_cache
    if fp.activations > left:
        raise CapacityError(f"activations need {fp.activations / GIB:.1f} GiB; {name} has "
                            f"{left / GIB:.1f} GiB left after weights and KV cache")
