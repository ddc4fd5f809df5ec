"""KV-cache policies: which token states are kept, how many bytes they hold and move.

Each policy is a small class registered by name, built with a memory budget in tokens (the
number of token slots per sequence, per layer and head; ``None`` = unlimited where that makes
sense). Accounting is per batch of ``batch`` sequences for a model and KV dtype:

* ``held_tokens(prompt_len, generated)``: token states one sequence keeps between steps;
* ``attended_tokens(prompt_len, generated)``: states the next decode step reads (the held
  ones plus the new token, whose K/V the step writes into the cache first);
* ``memory_held_bytes(...)``: KV bytes held plus policy metadata (accumulated scores);
* ``decode_traffic(...)`` / ``bytes_per_decode_step(...)``: KV bytes read and written by one
  decode step, metadata included; ``step_memory_bytes(...)``: resident while it runs.

The budget of the eviction policies (streaming, h2o, a2sf) is the number of KV slots per
sequence, layer and head, the new token's included: between steps they keep ``budget - 1``
states, so that once the context exceeds the budget every step reads exactly ``budget``
tokens (StreamingLLM's ``start_size + recent_size`` window, H2O's heavy + recent mask).

Eviction policies (streaming, h2o, a2sf, snapkv) also implement ``prefill(probs)`` and
``update(kept, probs)`` on attention probabilities, which :mod:`memsim.llm.kv_fidelity` uses to
measure the attention error against the full cache. Sources: H2O, StreamingLLM, KIVI
(papers.md Sec. 10); A2SF (Jo & Shin, arXiv:2407.20485: ``A_k = Σ_q α^{n-q} S_{q,k}``, budget
split between recent and selected tokens, code github.com/Dirac-Notation/A2SF); SnapKV (Li et
al., arXiv:2404.14469; code FasterDecoding/SnapKV ``snapkv_utils.py``: observation window of
the last ``window`` prompt queries, scores summed over the window, 1-D pooling of width
``kernel``, top ``capacity - window`` prefix positions kept plus the window; decode tokens are
appended without eviction; defaults window 32, capacity 2048, kernel 5, avgpool);
RelayAttention (Zhu et al., arXiv:2402.14808: the shared system prompt's KV is read from DRAM
once per batch, and the two partial attentions are merged by their log-sum-exp).
"""
from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ..dtypes import dtype_bytes
from ..errors import InputError
from ..spec import document_from_data
from .model import ModelSpec

__all__ = ["KvPolicy", "register_policy", "get_policy", "policy_names", "policy_from_data",
           "policy_from_node",
           "FullCache", "StreamingLLM", "H2O", "A2SF", "SnapKV", "KIVI", "RelayAttention"]

_POLICIES: dict[str, type["KvPolicy"]] = {}
SCORE_BYTES = 4     # accumulated attention scores are fp32, one per (token, head, layer)


def register_policy(cls: type["KvPolicy"]) -> type["KvPolicy"]:
    """Class decorator: register a policy under ``cls.name``; duplicates are refused."""
    if cls.name in _POLICIES:
        raise ValueError(f"KV policy {cls.name!r} is already registered")
    _POLICIES[cls.name] = cls
    return cls


def policy_names() -> tuple[str, ...]:
    return tuple(sorted(_POLICIES))


def get_policy(name: str, **params: Any) -> "KvPolicy":
    """Build a registered policy; a miss lists the known names."""
    if name not in _POLICIES:
        raise InputError(f"unknown KV policy {name!r}, expected one of: "
                         f"{', '.join(policy_names())}")
    return _POLICIES[name](**params)


def policy_from_data(data: dict, name: str = "<kv policy>") -> "KvPolicy":
    """A policy from a mapping ``{kind: h2o, budget: 512, ...}`` (strict: unknown keys are
    errors, located)."""
    return policy_from_node(document_from_data(dict(data), name).root("a KV policy"))


def policy_from_node(node) -> "KvPolicy":
    """A policy from a located ``memsim.spec.Node`` (a run configuration's ``kv_policy``)."""
    kind = node.req("kind", policy_names())
    cls = _POLICIES[kind]
    params = {}
    for key, typ in cls.params.items():
        if key in node.data:
            params[key] = node.req(key, typ)
    node.close()
    try:
        return cls(**params)
    except InputError as exc:
        raise node.error(None, str(exc)) from None


class KvPolicy:
    """Base: keeps every token (subclasses override what they keep and move)."""

    name: ClassVar[str] = ""
    evicts: ClassVar[bool] = False
    params: ClassVar[dict[str, Any]] = {"budget": int}

    def __init__(self, budget: int | None = None):
        if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int)
                                   or budget < 1):
            raise InputError(f'"budget" must be an integer >= 1 (tokens), got {budget!r}')
        if self.evicts and budget is None:
            raise InputError(f"KV policy {self.name!r} needs a 'budget' (tokens)")
        self.budget = budget

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.describe()})"

    def describe(self) -> str:
        return f"budget={self.budget}"

    # -- accounting -----------------------------------------------------------------------------
    def held_tokens(self, prompt_len: int, generated: int) -> int:
        return prompt_len + generated

    def metadata_bytes(self, model: ModelSpec, held: int) -> float:
        return 0.0

    def kv_bytes(self, model: ModelSpec, kv_dtype: str, tokens: int) -> float:
        """Bytes of ``tokens`` token states of one sequence."""
        return tokens * model.kv_bytes_per_token(dtype_bytes(kv_dtype))

    def memory_held_bytes(self, model: ModelSpec, kv_dtype: str, prompt_len: int,
                          generated: int, batch: int = 1) -> float:
        held = self.held_tokens(prompt_len, generated)
        return batch * (self.kv_bytes(model, kv_dtype, held) + self.metadata_bytes(model, held))

    def attended_tokens(self, prompt_len: int, generated: int) -> int:
        """Token states the decode step producing token ``generated + 1`` reads per sequence
        (layer and head): the held cache plus the new token, whose K/V the step writes."""
        return self.held_tokens(prompt_len, generated) + 1

    def decode_traffic(self, model: ModelSpec, kv_dtype: str, prompt_len: int,
                       generated: int, batch: int = 1) -> dict[str, float]:
        """Bytes of the decode step producing token ``generated + 1``, all layers, the whole
        batch: ``kv_read`` (the attended states), ``kv_write`` (the new token; KIVI adds a
        chunk it quantizes), ``meta_read``/``meta_write`` (accumulated scores) and
        ``attended`` (tokens read per sequence)."""
        n = self.attended_tokens(prompt_len, generated)
        meta = batch * self.metadata_bytes(model, n)
        return {"kv_read": batch * self.kv_bytes(model, kv_dtype, n),
                "kv_write": batch * self.kv_bytes(model, kv_dtype, 1),
                "meta_read": meta, "meta_write": meta, "attended": n}

    def bytes_per_decode_step(self, model: ModelSpec, kv_dtype: str, prompt_len: int,
                              generated: int, batch: int = 1) -> float:
        """All bytes of :meth:`decode_traffic`: KV read and written, metadata read and
        written, by the decode step that produces token ``generated + 1``."""
        t = self.decode_traffic(model, kv_dtype, prompt_len, generated, batch)
        return t["kv_read"] + t["kv_write"] + t["meta_read"] + t["meta_write"]

    def step_memory_bytes(self, model: ModelSpec, kv_dtype: str, prompt_len: int,
                          generated: int, batch: int = 1) -> float:
        """KV bytes resident while that step runs (the attended states, new token included,
        plus metadata): the footprint of the KV cache is the largest over the steps."""
        n = self.attended_tokens(prompt_len, generated)
        return batch * (self.kv_bytes(model, kv_dtype, n) + self.metadata_bytes(model, n))

    def fits(self, prompt_len: int, generated: int) -> bool:
        return self.budget is None or self.held_tokens(prompt_len, generated) <= self.budget

    # -- selection (eviction policies) ----------------------------------------------------------
    def prefill(self, probs: np.ndarray) -> np.ndarray:
        """Kept prompt positions per head, (H, k) sorted, from the causal prefill attention
        probabilities ``probs`` (H, P, P)."""
        h, p, _ = probs.shape
        return np.tile(np.arange(p), (h, 1))

    def update(self, kept: np.ndarray, probs: np.ndarray) -> np.ndarray:
        """After a decode step whose new token (the last entry of ``kept``) attended with
        ``probs`` (H, len(kept)), the positions kept for the next step."""
        return kept


@register_policy
class FullCache(KvPolicy):
    """Every token state is kept and read at every step."""

    name = "full"


@register_policy
class StreamingLLM(KvPolicy):
    """The first ``sinks`` tokens (attention sinks) plus a window of the most recent tokens,
    ``sinks + window = budget`` (Xiao et al. 2024; 4 sinks)."""

    name = "streaming"
    evicts = True
    params = {"budget": int, "sinks": int}

    def __init__(self, budget: int | None = None, sinks: int = 4):
        super().__init__(budget)
        if budget < 2 or not 0 <= sinks < budget - 1:
            raise InputError(f'"sinks" must be in [0, budget - 1) with budget >= 2, got sinks '
                             f"{sinks!r}, budget {budget!r}")
        self.sinks = sinks

    def describe(self) -> str:
        return f"budget={self.budget}, sinks={self.sinks}"

    def held_tokens(self, prompt_len: int, generated: int) -> int:
        return min(prompt_len + generated, self.budget - 1)

    def _select(self, positions: np.ndarray) -> np.ndarray:
        keep = self.budget - 1                      # + the next token = budget slots
        if positions.shape[1] <= keep:
            return positions
        recent = keep - self.sinks
        return np.concatenate([positions[:, :self.sinks], positions[:, -recent:]], axis=1)

    def prefill(self, probs: np.ndarray) -> np.ndarray:
        return self._select(super().prefill(probs))

    def update(self, kept: np.ndarray, probs: np.ndarray) -> np.ndarray:
        return self._select(kept)


@register_policy
class H2O(KvPolicy):
    """Heavy hitters by accumulated attention plus the most recent tokens; the budget is split
    evenly (``recent_ratio`` 0.5). Scores are accumulated over every step (Zhang et al. 2023)."""

    name = "h2o"
    evicts = True
    params = {"budget": int, "recent_ratio": float}
    forgetting = 1.0

    def __init__(self, budget: int | None = None, recent_ratio: float = 0.5):
        super().__init__(budget)
        if not 0.0 <= recent_ratio <= 1.0:
            raise InputError(f'"recent_ratio" must be in [0, 1], got {recent_ratio!r}')
        # the recent window holds the new token: at least 1, and at most budget (no heavy)
        self.recent = min(budget, max(1, int(round(budget * recent_ratio))))
        self.scores: np.ndarray | None = None      # (H, len(kept))

    def describe(self) -> str:
        return f"budget={self.budget}, recent={self.recent}"

    def held_tokens(self, prompt_len: int, generated: int) -> int:
        return min(prompt_len + generated, self.budget - 1)

    def metadata_bytes(self, model: ModelSpec, held: int) -> float:
        return held * model.heads * model.layers * SCORE_BYTES

    def _evict(self, kept: np.ndarray) -> np.ndarray:
        # keep budget - 1 states: the next token's K/V fills the last slot, and then the step
        # attends to budget - recent heavy hitters + the recent window (next token included)
        h, n = kept.shape
        if n <= self.budget - 1:
            return kept
        heavy = self.budget - self.recent
        recent = self.budget - 1 - heavy
        old = n - recent                           # candidates outside the recent window
        order = np.argsort(-self.scores[:, :old], axis=1, kind="stable")[:, :heavy]
        keep_idx = np.concatenate([np.sort(order, axis=1),
                                   np.tile(np.arange(old, n), (h, 1))], axis=1)
        self.scores = np.take_along_axis(self.scores, keep_idx, axis=1)
        return np.take_along_axis(kept, keep_idx, axis=1)

    def prefill(self, probs: np.ndarray) -> np.ndarray:
        h, p, _ = probs.shape
        weights = self.forgetting ** np.arange(p - 1, -1, -1, dtype=float)   # per query row
        self.scores = np.einsum("q,hqk->hk", weights, probs)
        return self._evict(np.tile(np.arange(p), (h, 1)))

    def update(self, kept: np.ndarray, probs: np.ndarray) -> np.ndarray:
        pad = np.zeros((kept.shape[0], kept.shape[1] - self.scores.shape[1]))
        self.scores = self.forgetting * np.concatenate([self.scores, pad], axis=1) + probs
        return self._evict(kept)


@register_policy
class A2SF(H2O):
    """H2O with a forgetting factor: ``score ← α·score + attention`` (Jo & Shin 2024), so old
    queries count less and early tokens are not favoured by the causal mask."""

    name = "a2sf"
    params = {"budget": int, "recent_ratio": float, "forgetting": float}

    def __init__(self, budget: int | None = None, recent_ratio: float = 0.5,
                 forgetting: float = 0.95):
        super().__init__(budget, recent_ratio)
        if not 0.0 < forgetting <= 1.0:
            raise InputError(f'"forgetting" must be in (0, 1], got {forgetting!r}')
        self.forgetting = forgetting

    def describe(self) -> str:
        return f"{super().describe()}, forgetting={self.forgetting}"


@register_policy
class SnapKV(KvPolicy):
    """Prompt compression at prefill: the last ``window`` prompt queries vote (summed attention,
    pooled over ``kernel`` neighbours) for ``budget - window`` prefix positions; the window is
    kept; generated tokens are appended without eviction (Li et al. 2024). ``budget`` is the
    prompt capacity (``max_capacity_prompt``)."""

    name = "snapkv"
    evicts = True
    params = {"budget": int, "window": int, "kernel": int, "pooling": str}

    def __init__(self, budget: int | None = None, window: int = 32, kernel: int = 5,
                 pooling: str = "avgpool"):
        super().__init__(budget)
        if not 1 <= window < budget:
            raise InputError(f'"window" must be in [1, budget), got {window!r}')
        if kernel < 1 or kernel % 2 == 0:
            raise InputError(f'"kernel" must be an odd integer >= 1, got {kernel!r}')
        if pooling not in ("avgpool", "maxpool"):
            raise InputError(f'"pooling" must be avgpool or maxpool, got {pooling!r}')
        self.window, self.kernel, self.pooling = window, kernel, pooling

    def describe(self) -> str:
        return f"budget={self.budget}, window={self.window}, kernel={self.kernel}"

    def held_tokens(self, prompt_len: int, generated: int) -> int:
        return min(prompt_len, self.budget) + generated

    def fits(self, prompt_len: int, generated: int) -> bool:
        return True                                  # the budget bounds the prompt part only

    def prefill(self, probs: np.ndarray) -> np.ndarray:
        h, p, _ = probs.shape
        if p <= self.budget:
            return np.tile(np.arange(p), (h, 1))
        votes = probs[:, p - self.window:, :p - self.window].sum(axis=1)     # (H, prefix)
        pad = self.kernel // 2
        if self.pooling == "avgpool":      # zero padding, divisor = kernel (count_include_pad)
            padded = np.pad(votes, ((0, 0), (pad, pad)))
            pooled = np.stack([padded[:, i:i + votes.shape[1]] for i in range(self.kernel)]
                              ).mean(axis=0)
        else:
            padded = np.pad(votes, ((0, 0), (pad, pad)), constant_values=-np.inf)
            pooled = np.stack([padded[:, i:i + votes.shape[1]] for i in range(self.kernel)]
                              ).max(axis=0)
        top = np.sort(np.argsort(-pooled, axis=1, kind="stable")[:, :self.budget - self.window],
                      axis=1)
        return np.concatenate([top, np.tile(np.arange(p - self.window, p), (h, 1))], axis=1)


@register_policy
class KIVI(KvPolicy):
    """2-bit (or 4-bit) asymmetric quantization: keys per channel, values per token, in groups
    of ``group``; the most recent tokens (fewer than ``residual``) stay in full precision until
    a whole chunk can be quantized (Liu et al. 2024). Scale and zero point are ``scale_dtype``
    per group. Nothing is evicted."""

    name = "kivi"
    params = {"budget": int, "bits": int, "group": int, "residual": int, "scale_dtype": str}

    def __init__(self, budget: int | None = None, bits: int = 2, group: int = 32,
                 residual: int = 128, scale_dtype: str = "fp16"):
        super().__init__(budget)
        if bits not in (2, 4, 8):
            raise InputError(f'"bits" must be 2, 4 or 8, got {bits!r}')
        if group < 1 or residual < 1 or residual % group:
            raise InputError(f'"residual" ({residual}) must be a positive multiple of "group" '
                             f"({group})")
        self.bits, self.group, self.residual, self.scale_dtype = bits, group, residual, \
            scale_dtype

    def describe(self) -> str:
        return f"bits={self.bits}, group={self.group}, residual={self.residual}"

    def split(self, tokens: int) -> tuple[int, int]:
        """(quantized, full-precision residual) tokens of a cache of ``tokens``."""
        full = tokens % self.residual
        return tokens - full, full

    def quantized_bytes_per_element(self) -> float:
        return self.bits / 8 + 2 * dtype_bytes(self.scale_dtype) / self.group

    def kv_bytes(self, model: ModelSpec, kv_dtype: str, tokens: int) -> float:
        quantized, full = self.split(tokens)
        per_token = model.kv_elements_per_token()
        return per_token * (quantized * self.quantized_bytes_per_element()
                            + full * dtype_bytes(kv_dtype))

    def decode_traffic(self, model: ModelSpec, kv_dtype: str, prompt_len: int,
                       generated: int, batch: int = 1) -> dict[str, float]:
        t = super().decode_traffic(model, kv_dtype, prompt_len, generated, batch)
        if t["attended"] % self.residual == 0:      # the residual chunk is quantized now:
            chunk = batch * model.kv_elements_per_token() * self.residual   # read fp16, write
            t["kv_read"] += chunk * dtype_bytes(kv_dtype)                   # the quantized
            t["kv_write"] += chunk * self.quantized_bytes_per_element()
        return t

    def fits(self, prompt_len: int, generated: int) -> bool:
        return True


@register_policy
class RelayAttention(KvPolicy):
    """A system prompt of ``system_len`` tokens shared by the whole batch: stored once and read
    once per decode step for all sequences, its partial attention merged with each request's
    own by log-sum-exp (Zhu et al. 2024). Exact: no token is dropped."""

    name = "relay"
    params = {"budget": int, "system_len": int}

    def __init__(self, budget: int | None = None, system_len: int = 0):
        super().__init__(budget)
        if system_len < 0:
            raise InputError(f'"system_len" must be >= 0, got {system_len!r}')
        self.system_len = system_len

    def describe(self) -> str:
        return f"system_len={self.system_len}"

    def _split(self, prompt_len: int) -> int:
        if self.system_len > prompt_len:
            raise InputError(f"system_len ({self.system_len}) exceeds prompt_len ({prompt_len})")
        return prompt_len - self.system_len

    def memory_held_bytes(self, model, kv_dtype, prompt_len, generated, batch=1) -> float:
        own = self._split(prompt_len) + generated
        return self.kv_bytes(model, kv_dtype, self.system_len + batch * own)

    def decode_traffic(self, model, kv_dtype, prompt_len, generated, batch=1) -> dict:
        own = self._split(prompt_len) + generated + 1
        return {"kv_read": self.kv_bytes(model, kv_dtype, self.system_len + batch * own),
                "kv_write": batch * self.kv_bytes(model, kv_dtype, 1), "meta_read": 0.0,
                "meta_write": 0.0, "attended": self.system_len + own}

    def step_memory_bytes(self, model, kv_dtype, prompt_len, generated, batch=1) -> float:
        own = self._split(prompt_len) + generated + 1
        return self.kv_bytes(model, kv_dtype, self.system_len + batch * own)
