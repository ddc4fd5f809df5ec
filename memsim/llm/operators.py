"""Expand an LLM workload into the operators of prefill and of one decode step.

Each ``Operator`` carries its FLOPs and the bytes it moves across the HBM boundary when every
input is read once and every output written once (the roofline convention of LLM-Viewer,
papers.md Sec. 9), split by tensor class: weights, activations read/written, KV cache
read/written. ``count`` is how many times it runs per stage (once per layer for layer ops).

Counting rules (b = batch, T = tokens processed: b·prompt_len in prefill, b in decode,
a/w/kv = bytes per element of activations/weights/KV cache):

* linear ``in × out``: FLOPs ``2·T·in·out``; weights ``in·out`` (+ bias); reads ``T·in·a``;
  writes ``T·out·a`` (k_proj and v_proj write into the KV cache in the KV dtype).
* norm: 7 FLOPs per element (LLM-Viewer); reads and writes ``T·h·a`` plus its weights.
* residual add: 1 FLOP per element; reads two and writes one ``T·h·a`` tensor.
* activation: gated ``act(gate)·up`` 2 FLOPs per element, reads 2, writes 1 ``T·f·a``;
  plain 1 FLOP, reads 1, writes 1 (of the FFN width f, not h as LLM-Viewer has it).
* attention with the ``standard`` schedule: three operators as in FlashAttention's Algorithm 0:
  ``qk_matmul`` (reads Q, K; writes S), ``softmax`` (5 FLOPs per score; reads S, writes P),
  ``sv_matmul`` (reads P, V; writes O); every score is computed (masks applied in the softmax),
  S and P in the activation dtype.
* attention with a fused schedule (flash1/flash2/flash_decoding/...): one ``attention``
  operator; FLOPs ``4·d`` per visible (q, k) pair (``AttentionWorkload.flops``); reads Q, K, V
  once, writes O once. The simulator supplies the schedule's real traffic.
* LM head: logits of the last position of each sequence only (``2·b·h·vocab`` FLOPs in both
  stages; LLM-Viewer counts ``b·h·vocab``).
* embedding: a gather of T rows (no FLOPs).
* rotary (``position: rope`` models): ``x·cos + rotate_half(x)·sin`` on q and k, 3 FLOPs per
  element; reads and writes ``T·(heads + kv_heads)·d·a`` plus the cos/sin rows
  ``2·seq_q·d·a`` (one fused kernel, as inference engines run it).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from ..workloads.attention import AttentionWorkload
from .workload import LlmWorkload

__all__ = ["Operator", "prefill_operators", "decode_operators", "attention_operators",
          "ATTENTION_KINDS", "NORM_FLOPS_PER_ELEMENT",
           "SOFTMAX_FLOPS_PER_ELEMENT"]

NORM_FLOPS_PER_ELEMENT = 7      # LLM-Viewer: mean/var (or rms), sub, mul, add
SOFTMAX_FLOPS_PER_ELEMENT = 5   # LLM-Viewer: max, sub, exp, sum, div
ATTENTION_KINDS = ("attention", "matmul", "softmax")   # operators whose work grows with context
MEMORY_KERNEL_KINDS = ("norm", "elementwise", "embedding")   # one memory-bound kernel each


@dataclass(frozen=True)
class Operator:
    """One operator of one stage, per instance; ``count`` instances per stage."""

    name: str
    stage: str                     # prefill | decode
    kind: str                      # linear | attention | matmul | softmax | norm | elementwise
                                   # | embedding
    flops: float
    compute: str                   # tensor | vector: which peak rate bounds it
    weight_bytes: float = 0.0
    act_read_bytes: float = 0.0
    act_write_bytes: float = 0.0
    kv_read_bytes: float = 0.0
    kv_write_bytes: float = 0.0
    count: int = 1
    shape: tuple = ()              # hashable key of what the simulator runs (gemm / attention)
    params: Mapping = field(default_factory=dict, compare=False)

    @property
    def bytes(self) -> float:
        """All bytes across the HBM boundary, per instance."""
        return (self.weight_bytes + self.act_read_bytes + self.act_write_bytes
                + self.kv_read_bytes + self.kv_write_bytes)

    @property
    def read_bytes(self) -> float:
        return self.weight_bytes + self.act_read_bytes + self.kv_read_bytes

    @property
    def write_bytes(self) -> float:
        return self.act_write_bytes + self.kv_write_bytes

    @property
    def intensity(self) -> float:
        """Arithmetic intensity, FLOPs per byte."""
        return self.flops / self.bytes if self.bytes else float("inf")


def _linears(wl: LlmWorkload, stage: str, tokens: int) -> list[Operator]:
    m = wl.model
    a, kv = wl.act_bytes, wl.kv_bytes
    ops = []
    for name, (fan_in, fan_out) in m.linear_shapes().items():
        weight_elems = fan_in * fan_out
        flops = 2.0 * tokens * fan_in * fan_out
        if (stage == "decode" and wl.exploit_ffn_sparsity and m.ffn.sparsity
                and name in ("gate_proj", "up_proj", "down_proj")):
            # only the active neurons' rows/columns are read and multiplied
            keep = 1.0 - m.ffn.sparsity
            weight_elems *= keep
            flops *= keep
        weight = weight_elems * wl.linear_weight_bytes + (fan_out * wl.weight_bytes
                                                          if m.bias else 0)
        writes_kv = name in ("k_proj", "v_proj")
        ops.append(Operator(
            name, stage, "linear", flops, "tensor", weight_bytes=weight,
            act_read_bytes=tokens * fan_in * a,
            act_write_bytes=0.0 if writes_kv else tokens * fan_out * a,
            kv_write_bytes=tokens * fan_out * kv if writes_kv else 0.0,
            count=m.layers, shape=("gemm", tokens, fan_out, fan_in, wl.act_dtype),
            params={"m": tokens, "n": fan_out, "k": fan_in}))
    return ops


def attention_operators(wl: LlmWorkload, stage: str, seq_q: int, seq_k: int
                        ) -> list[Operator]:
    """Attention of ``seq_q`` new tokens per sequence over ``seq_k`` cached keys."""
    m = wl.model
    b, a, kv = wl.batch, wl.act_bytes, wl.kv_bytes
    schedule = wl.prefill_schedule if stage == "prefill" else wl.decode_schedule
    window = m.sliding_window
    work = AttentionWorkload(b, m.heads, m.kv_heads, seq_q, seq_k, m.head_dim, causal=True,
                             window=window, dtype=wl.act_dtype)
    if stage == "decode" and wl.kv_policy is not None and wl.kv_policy.name != "full":
        return [_policy_attention(wl, seq_k, schedule)]
    keys_read = wl.cached_tokens(seq_k) if stage == "decode" else seq_k
    q_bytes = b * m.heads * seq_q * m.head_dim * a
    kv_bytes = b * m.kv_heads * keys_read * m.head_dim * kv
    shape = ("attention", b, m.heads, m.kv_heads, seq_q, keys_read, m.head_dim, window,
             wl.act_dtype, schedule)
    params = {"schedule": schedule, "seq_q": seq_q, "seq_k": keys_read}
    if schedule != "standard":
        return [Operator("attention", stage, "attention", float(work.flops), "tensor",
                         act_read_bytes=q_bytes, kv_read_bytes=2 * kv_bytes,
                         act_write_bytes=q_bytes, count=m.layers, shape=shape, params=params)]
    # Algorithm 0 computes every score of the (seq_q x keys_read) block
    scores = b * m.heads * seq_q * keys_read
    matmul = 2.0 * scores * m.head_dim
    return [
        Operator("qk_matmul", stage, "matmul", matmul, "tensor", act_read_bytes=q_bytes,
                 kv_read_bytes=kv_bytes, act_write_bytes=scores * a, count=m.layers,
                 shape=shape + ("qk",), params=params),
        Operator("softmax", stage, "softmax", SOFTMAX_FLOPS_PER_ELEMENT * scores, "vector",
                 act_read_bytes=scores * a, act_write_bytes=scores * a, count=m.layers,
                 params=params),
        Operator("sv_matmul", stage, "matmul", matmul, "tensor", act_read_bytes=scores * a,
                 kv_read_bytes=kv_bytes, act_write_bytes=q_bytes, count=m.layers,
                 shape=shape + ("sv",), params=params),
    ]


def _policy_attention(wl: LlmWorkload, context: int, schedule: str) -> Operator:
    """Decode attention (per layer) of the step whose new token sees ``context`` keys, under
    ``wl.kv_policy``: it reads the policy's attended states (``decode_traffic``, divided by
    the layers) instead of the context. The new token's K/V is written by k_proj/v_proj; only
    what the policy writes beyond it (KIVI's chunk quantization, accumulated scores) is here.

    Simulated shape: eviction policies and SnapKV are an ordinary decode attention over the
    attended tokens; RelayAttention is two attentions (the batch's queries over the shared
    system prompt, then each sequence over its own tokens; the log-sum-exp merge is not
    costed); KIVI has no shape (mixed-precision K/V: roofline only). Score metadata bytes are
    passed as ``params['extra_bytes']`` for the simulator to add at HBM bandwidth."""
    m, p = wl.model, wl.kv_policy
    b, a, layers = wl.batch, wl.act_bytes, m.layers
    generated = context - wl.prompt_len - 1
    t = p.decode_traffic(m, wl.kv_dtype, wl.prompt_len, generated, b)
    n = int(t["attended"])
    new_token = b * p.kv_bytes(m, wl.kv_dtype, 1)
    flops = AttentionWorkload(b, m.heads, m.kv_heads, 1, n, m.head_dim, causal=True,
                              dtype=wl.act_dtype).flops
    q_bytes = b * m.heads * m.head_dim * a
    meta = (t["meta_read"] + t["meta_write"]) / layers
    params = {"schedule": schedule, "seq_q": 1, "seq_k": n, "policy": p.name,
              "extra_bytes": meta}
    if p.name == "kivi":
        shape: tuple = ()
    elif p.name == "relay":
        own = n - p.system_len
        shape = ("relay", b, m.heads, m.kv_heads, p.system_len, own, m.head_dim, wl.act_dtype,
                 schedule)
    else:
        shape = ("attention", b, m.heads, m.kv_heads, 1, n, m.head_dim, None, wl.act_dtype,
                 schedule)
    return Operator("attention", "decode", "attention", float(flops), "tensor",
                    act_read_bytes=q_bytes, act_write_bytes=q_bytes,
                    kv_read_bytes=(t["kv_read"] + t["meta_read"]) / layers,
                    kv_write_bytes=(t["kv_write"] - new_token + t["meta_write"]) / layers,
                    count=layers, shape=shape, params=params)


def _elementwise(wl: LlmWorkload, stage: str, tokens: int) -> list[Operator]:
    m = wl.model
    a, h, f = wl.act_bytes, m.hidden, m.ffn.size
    norm_w = m.norm_params * wl.weight_bytes
    ops = [Operator("attn_norm" if m.norms_per_layer == 2 else "norm", stage, "norm",
                    NORM_FLOPS_PER_ELEMENT * tokens * h, "vector", weight_bytes=norm_w,
                    act_read_bytes=tokens * h * a, act_write_bytes=tokens * h * a,
                    count=m.layers)]
    if m.norms_per_layer == 2:
        ops.append(Operator("mlp_norm", stage, "norm", NORM_FLOPS_PER_ELEMENT * tokens * h,
                            "vector", weight_bytes=norm_w, act_read_bytes=tokens * h * a,
                            act_write_bytes=tokens * h * a, count=m.layers))
    inputs = 2 if m.ffn.gated else 1
    ops.append(Operator("mlp_act", stage, "elementwise", float(inputs * tokens * f), "vector",
                        act_read_bytes=inputs * tokens * f * a, act_write_bytes=tokens * f * a,
                        count=m.layers))
    for name in ("attn_add", "mlp_add"):
        ops.append(Operator(name, stage, "elementwise", float(tokens * h), "vector",
                            act_read_bytes=2 * tokens * h * a, act_write_bytes=tokens * h * a,
                            count=m.layers))
    return ops


def _rotary(wl: LlmWorkload, stage: str, tokens: int, seq_q: int) -> list[Operator]:
    """Rotary position embedding of q and k (models with ``position: rope``), as one fused
    kernel: ``x·cos + rotate_half(x)·sin`` is 3 FLOPs per element; reads and writes q and k
    and reads the cos/sin rows of the ``seq_q`` positions of a sequence."""
    m = wl.model
    if m.position != "rope":
        return []
    a, d = wl.act_bytes, m.head_dim
    qk = tokens * (m.heads + m.kv_heads) * d
    return [Operator("rotary", stage, "elementwise", 3.0 * qk, "vector",
                     act_read_bytes=qk * a + 2 * seq_q * d * a, act_write_bytes=qk * a,
                     count=m.layers)]


def _model_ends(wl: LlmWorkload, stage: str, tokens: int) -> list[Operator]:
    m = wl.model
    a, w, h, b = wl.act_bytes, wl.weight_bytes, m.hidden, wl.batch
    head_w = h * m.vocab * (wl.linear_weight_bytes if not m.tied_embeddings else w)
    return [
        Operator("embed", stage, "embedding", 0.0, "vector", weight_bytes=tokens * h * w,
                 act_write_bytes=tokens * h * a),
        Operator("final_norm", stage, "norm", NORM_FLOPS_PER_ELEMENT * b * h, "vector",
                 weight_bytes=m.norm_params * w, act_read_bytes=b * h * a,
                 act_write_bytes=b * h * a),
        Operator("lm_head", stage, "linear", 2.0 * b * h * m.vocab, "tensor",
                 weight_bytes=head_w, act_read_bytes=b * h * a, act_write_bytes=b * m.vocab * a,
                 shape=("gemm", b, m.vocab, h, wl.act_dtype),
                 params={"m": b, "n": m.vocab, "k": h, "tied": m.tied_embeddings}),
    ]


def _stage(wl: LlmWorkload, stage: str, tokens: int, seq_q: int, seq_k: int) -> list[Operator]:
    ops = _linears(wl, stage, tokens)
    ends = _model_ends(wl, stage, tokens)
    # embed, q/k/v, rotary, attention, o_proj and the FFN, the elementwise ops, final norm,
    # LM head
    return (ends[:1] + ops[:3] + _rotary(wl, stage, tokens, seq_q)
            + attention_operators(wl, stage, seq_q, seq_k) + ops[3:]
            + _elementwise(wl, stage, tokens) + ends[1:])


def prefill_operators(wl: LlmWorkload) -> list[Operator]:
    """Operators of the prefill of ``batch`` prompts of ``prompt_len`` tokens."""
    return _stage(wl, "prefill", wl.batch * wl.prompt_len, wl.prompt_len, wl.prompt_len)


def decode_operators(wl: LlmWorkload, context: int) -> list[Operator]:
    """Operators of one decode step whose new token attends to ``context`` keys (itself
    included), for all ``batch`` sequences."""
    return _stage(wl, "decode", wl.batch, 1, context)
