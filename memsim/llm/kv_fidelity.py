"""Fidelity of KV-cache policies: attention output error against the full cache.

Synthetic attention inputs (``synthetic_attention``), one layer, ``heads`` heads of ``head_dim``,
``prompt + steps`` tokens, seeded (numpy ``default_rng(seed)``):

* every key is ``z_k + a_k·u_h + ρ·p(k)``: Gaussian noise ``z``; a per-head *salience
  direction* ``u_h`` (unit); a salience ``a_k`` drawn from a power law (Pareto with tail index
  ``alpha``: ``a = scale·(U^(-1/alpha) - 1)``, capped at ``cap``), the first ``sinks`` tokens
  get ``sink_salience`` (attention sinks, StreamingLLM); and a positional code
  ``p(k) = [cos(ω_j k), sin(ω_j k)]_j`` over a few frequencies, so that queries prefer recent
  keys (RoPE-like locality);
* every query is ``z_q + g·u_h + ρ·p(q)``; values are Gaussian.

So ``q·k`` ≈ ``g·a_k`` + locality + noise: a few heavy hitters, sinks and recency, the
structure H2O and StreamingLLM report in real models. The decode queries are positions
``prompt … prompt + steps - 1``; each attends to the cache (plus itself) through the policy.

The error of a step is ``relative_error`` (Frobenius, over heads) between the policy's output
(``memsim.numerics.run_attention("flash2", ...)`` on the kept keys, numba) and the
float64 full-cache reference (``reference_attention``); the report is the mean over steps.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..numerics import reference_attention, relative_error, run_attention
from .kv_policies import KIVI, KvPolicy, RelayAttention

__all__ = ["SyntheticAttention", "synthetic_attention", "policy_fidelity", "kivi_dequantize",
           "relay_error"]


@dataclass(frozen=True)
class SyntheticAttention:
    """Queries, keys and values of one layer: (H, N, d) float64 each."""

    q: np.ndarray
    k: np.ndarray
    v: np.ndarray
    prompt: int

    @property
    def heads(self) -> int:
        return self.q.shape[0]


def synthetic_attention(prompt: int = 512, steps: int = 64, heads: int = 4,
                        head_dim: int = 64, seed: int = 0, alpha: float = 1.5,
                        scale: float = 0.6, cap: float = 8.0, sinks: int = 4,
                        sink_salience: float = 8.0, gain: float = 1.0,
                        locality: float = 1.0) -> SyntheticAttention:
    """Attention inputs with power-law key salience, sink tokens and recency (module doc)."""
    rng = np.random.default_rng(seed)
    n, d = prompt + steps, head_dim
    u = rng.normal(size=(heads, 1, d))
    u /= np.linalg.norm(u, axis=-1, keepdims=True)
    salience = np.minimum(scale * (rng.uniform(1e-9, 1.0, (heads, n)) ** (-1 / alpha) - 1), cap)
    salience[:, :sinks] = sink_salience
    pos = np.arange(n)
    freqs = 1.0 / (64.0 ** (np.arange(4) / 4))           # periods of ~6 to ~140 tokens
    code = np.concatenate([np.cos(pos[:, None] * freqs), np.sin(pos[:, None] * freqs)], 1)
    pcode = np.zeros((n, d))
    pcode[:, :code.shape[1]] = code * locality * math.sqrt(math.sqrt(d) / code.shape[1])
    g = gain * math.sqrt(d)
    k = rng.normal(size=(heads, n, d)) + salience[..., None] * u + pcode
    q = rng.normal(size=(heads, n, d)) + g * u + pcode
    v = rng.normal(size=(heads, n, d))
    return SyntheticAttention(q, k, v, prompt)


def _probs(q: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Softmax of ``q·k/√d`` for (H, d) queries over (H, n, d) keys: (H, n)."""
    s = np.einsum("hd,hnd->hn", q, k) / math.sqrt(q.shape[-1])
    s -= s.max(axis=1, keepdims=True)
    p = np.exp(s)
    return p / p.sum(axis=1, keepdims=True)


def _prefill_probs(x: SyntheticAttention) -> np.ndarray:
    p = x.prompt
    s = np.einsum("hqd,hkd->hqk", x.q[:, :p], x.k[:, :p]) / math.sqrt(x.q.shape[-1])
    s = np.where(np.tril(np.ones((p, p), bool)), s, -np.inf)
    s -= s.max(axis=2, keepdims=True)
    e = np.exp(s)
    return e / e.sum(axis=2, keepdims=True)


def _decode_output(q, k, v) -> np.ndarray:
    """One decode query per head over its own keys, through the numba flash2 kernel (one row
    block; the flash_decoding kernel computes the same and is ~15x slower per call here)."""
    res = run_attention("flash2", q[None, :, None, :], k[None], v[None])
    return res.output[0, :, 0, :]


def policy_fidelity(policy: KvPolicy, x: SyntheticAttention) -> dict:
    """Mean and max relative attention-output error of ``policy`` against the full cache over
    the decode steps of ``x``, and the largest number of tokens it held."""
    steps = x.q.shape[1] - x.prompt
    h = x.heads
    kept = policy.prefill(_prefill_probs(x))
    errors, held = [], kept.shape[1]
    rows = np.arange(h)[:, None]
    for t in range(steps):
        pos = x.prompt + t
        kept = np.concatenate([kept, np.full((h, 1), pos)], axis=1)
        qt = x.q[:, pos]
        k_kept, v_kept = x.k[rows, kept], x.v[rows, kept]
        if isinstance(policy, KIVI):
            k_kept, v_kept = kivi_dequantize(policy, x.k[:, :pos + 1], x.v[:, :pos + 1])
        out = _decode_output(qt, k_kept, v_kept)
        ref, _ = reference_attention(qt[None, :, None, :], x.k[None, :, :pos + 1],
                                     x.v[None, :, :pos + 1])
        errors.append(relative_error(out, ref[0, :, 0, :]))
        kept = policy.update(kept, _probs(qt, k_kept))
        held = max(held, kept.shape[1])
    return {"policy": policy.name, "params": policy.describe(), "mean_error": float(np.mean(
        errors)), "max_error": float(np.max(errors)), "max_held_tokens": int(held)}


def _quantize(x: np.ndarray, bits: int, axis: int) -> np.ndarray:
    """Asymmetric min/max quantize-dequantize of groups laid along ``axis`` (size = group)."""
    lo = x.min(axis=axis, keepdims=True)
    hi = x.max(axis=axis, keepdims=True)
    levels = 2 ** bits - 1
    step = np.where(hi > lo, (hi - lo) / levels, 1.0)
    return np.round((x - lo) / step) * step + lo


def kivi_dequantize(policy: KIVI, k: np.ndarray, v: np.ndarray) -> tuple[np.ndarray,
                                                                         np.ndarray]:
    """Keys and values (H, n, d) as KIVI stores them: the quantized part (keys grouped per
    channel over ``group`` tokens, values per token over ``group`` channels) dequantized, the
    full-precision residual unchanged."""
    h, n, d = k.shape
    nq, _ = policy.split(n)
    g = policy.group
    kq, vq = k.copy(), v.copy()
    if nq:
        kg = k[:, :nq].reshape(h, nq // g, g, d)                  # tokens grouped per channel
        kq[:, :nq] = _quantize(kg, policy.bits, axis=2).reshape(h, nq, d)
        if d % g == 0:
            vg = v[:, :nq].reshape(h, nq, d // g, g)              # channels grouped per token
            vq[:, :nq] = _quantize(vg, policy.bits, axis=3).reshape(h, nq, d)
        else:
            vq[:, :nq] = _quantize(v[:, :nq], policy.bits, axis=2)
    return kq, vq


def relay_error(policy: RelayAttention, x: SyntheticAttention) -> float:
    """Relative error of RelayAttention's merge (system-prompt attention and the request's own
    attention, each through the numba flash2 kernel, merged by log-sum-exp) against the
    float64 full attention, for the first decode query of ``x``."""
    s, pos = policy.system_len, x.prompt
    q = x.q[None, :, pos:pos + 1]
    sys_part = run_attention("flash2", q, x.k[None, :, :s], x.v[None, :, :s])
    own = run_attention("flash2", q, x.k[None, :, s:pos + 1], x.v[None, :, s:pos + 1])
    l1, l2 = sys_part.lse[..., None], own.lse[..., None]
    top = np.maximum(l1, l2)
    w1, w2 = np.exp(l1 - top), np.exp(l2 - top)
    merged = (w1 * sys_part.output + w2 * own.output) / (w1 + w2)
    ref, _ = reference_attention(q, x.k[None, :, :pos + 1], x.v[None, :, :pos + 1])
    return relative_error(merged, ref)
