"""The ``llm`` workload: a model, a batch of prompts, a generation length and dtypes.

    workload:
      kind: llm
      model: llama-2-7b              # preset name, path to a model YAML, or an inline mapping
      batch: 1
      prompt_len: 2048
      gen_len: 128
      weight_dtype: fp16             # every tensor class has its own dtype
      kv_dtype: fp16
      act_dtype: fp16
      weight_quant: {bits: 4, group: 128, scale_dtype: fp16, zero_point: true}   # optional
      attention_schedule: {prefill: flash2, decode: flash_decoding}  # or one name for both
      decode_samples: 3              # decode contexts simulated exactly (see docs/llm.md)
      exploit_ffn_sparsity: false    # read only the active FFN neurons in decode
      kv_policy: {kind: h2o, budget: 512}   # optional: a registered KV-cache policy

``weight_quant`` applies to the linear-layer matrices (weight-only quantization: AWQ/GPTQ
style, dequantized to ``act_dtype`` before the multiply); embeddings, norms and biases stay in
``weight_dtype``. Bytes per quantized weight: ``bits/8 + (scale + zero)/group``, with the zero
point stored in ``bits`` bits when ``zero_point`` is true.

``kv_policy`` (:mod:`memsim.llm.kv_policies`) changes what each decode step reads and what
the KV cache holds: eviction policies cap the tokens decode attention reads, KIVI changes the
bytes per token, RelayAttention reads the shared system prompt once per batch. Prefill is
unchanged (the policies' selection at prefill is not costed).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ..dtypes import DTYPES, dtype_bytes
from ..errors import InputError
from ..spec import Node, document_from_data
from .kv_policies import KvPolicy, RelayAttention, policy_from_node
from .model import ModelSpec, load_model, model_from_data

__all__ = ["WeightQuant", "LlmWorkload", "ATTENTION_SCHEDULES"]

# Attention schedules the operator expansion knows how to count at the HBM boundary: the
# ``standard`` (unfused: S and P go through HBM, as LLM-Viewer counts without FlashAttention)
# and the fused ones (Q, K, V read once, O written once at the roofline).
ATTENTION_SCHEDULES = ("standard", "flash1", "flash2", "flash_decoding", "chunked",
                       "square_tiling")


@dataclass(frozen=True)
class WeightQuant:
    """Group-wise weight quantization of the linear layers."""

    bits: int = 4
    group: int = 128
    scale_dtype: str = "fp16"
    zero_point: bool = True

    def bytes_per_weight(self) -> float:
        """Average bytes per quantized weight, scales and zero points included."""
        zero = self.bits / 8 if self.zero_point else 0.0
        return self.bits / 8 + (dtype_bytes(self.scale_dtype) + zero) / self.group


@dataclass(frozen=True)
class LlmWorkload:
    """Prefill of ``batch`` prompts of ``prompt_len`` tokens, then ``gen_len`` decode steps."""

    model: ModelSpec
    batch: int = 1
    prompt_len: int = 512
    gen_len: int = 128
    weight_dtype: str = "fp16"
    kv_dtype: str = "fp16"
    act_dtype: str = "fp16"
    weight_quant: WeightQuant | None = None
    prefill_schedule: str = "flash2"
    decode_schedule: str = "flash_decoding"
    decode_samples: int = 3
    exploit_ffn_sparsity: bool = False
    kv_policy: KvPolicy | None = field(default=None, compare=False)
    kv_policy_data: Mapping | None = field(default=None, compare=False)   # as given

    kind = "llm"

    def __post_init__(self) -> None:
        for name in ("batch", "prompt_len", "gen_len", "decode_samples"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f'"{name}" must be an integer >= 1, got {value!r}')
        for name in ("weight_dtype", "kv_dtype", "act_dtype"):
            if getattr(self, name) not in DTYPES:
                raise InputError(f'"{name}" must be one of {", ".join(DTYPES)}, '
                                 f"got {getattr(self, name)!r}")
        for name in ("prefill_schedule", "decode_schedule"):
            if getattr(self, name) not in ATTENTION_SCHEDULES:
                raise InputError(f'"attention_schedule.{name.split("_")[0]}" must be one of '
                                 f"{', '.join(ATTENTION_SCHEDULES)}, got {getattr(self, name)!r}")
        if self.kv_policy is not None:
            if self.model.sliding_window and self.kv_policy.name != "full":
                raise InputError(f"kv_policy {self.kv_policy.name!r} with a sliding-window "
                                 f"model ({self.model.name}) is not modelled")
            if isinstance(self.kv_policy, RelayAttention):
                self.kv_policy._split(self.prompt_len)          # system_len <= prompt_len
        total = self.prompt_len + self.gen_len
        if total > self.model.max_positions:
            raise InputError(f"prompt_len + gen_len = {total} exceeds {self.model.name}'s "
                             f"max_positions ({self.model.max_positions})")

    # -- sizes ----------------------------------------------------------------------------------
    @property
    def max_len(self) -> int:
        """Tokens per sequence at the end of generation."""
        return self.prompt_len + self.gen_len

    @property
    def act_bytes(self) -> float:
        return dtype_bytes(self.act_dtype)

    @property
    def kv_bytes(self) -> float:
        return dtype_bytes(self.kv_dtype)

    @property
    def weight_bytes(self) -> float:
        """Bytes per element of unquantized weights (embeddings, norms, biases)."""
        return dtype_bytes(self.weight_dtype)

    @property
    def linear_weight_bytes(self) -> float:
        """Bytes per element of the linear-layer matrices (quantized if ``weight_quant``)."""
        if self.weight_quant is not None:
            return self.weight_quant.bytes_per_weight()
        return self.weight_bytes

    def cached_tokens(self, context: int) -> int:
        """Tokens held in the KV cache at ``context`` (a sliding window caps it)."""
        window = self.model.sliding_window
        return min(context, window) if window else context

    # -- loading --------------------------------------------------------------------------------
    @classmethod
    def from_node(cls, node: Node) -> "LlmWorkload":
        """Load from a run configuration's ``workload`` mapping; rejects unknown keys."""
        node.opt("kind", ("llm",))
        raw = node.data.get("model")
        if isinstance(raw, dict):
            node.child("model")
            model = model_from_data(raw, f"{node.doc.file}: {node.path}.model")
        else:
            ref = node.req("model", str)
            try:
                model = load_model(ref)
            except InputError as exc:
                if getattr(exc, "file", None):
                    raise
                raise node.error("model", str(exc)) from None
        batch = node.opt("batch", int, 1, minimum=1)
        prompt_len = node.req("prompt_len", int, minimum=1)
        gen_len = node.opt("gen_len", int, 128, minimum=1)
        dtypes = {k: node.opt(k, DTYPES, "fp16") for k in ("weight_dtype", "kv_dtype",
                                                           "act_dtype")}
        quant = None
        qnode = node.child("weight_quant", required=False)
        if qnode is not None:
            quant = WeightQuant(qnode.opt("bits", (2, 3, 4, 8), 4),
                                qnode.opt("group", int, 128, minimum=1),
                                qnode.opt("scale_dtype", DTYPES, "fp16"),
                                qnode.opt("zero_point", bool, True))
            qnode.close()
        prefill, decode = "flash2", "flash_decoding"
        sched = node.data.get("attention_schedule")
        if isinstance(sched, dict):
            snode = node.child("attention_schedule")
            prefill = snode.opt("prefill", ATTENTION_SCHEDULES, prefill)
            decode = snode.opt("decode", ATTENTION_SCHEDULES, decode)
            snode.close()
        elif sched is not None:
            prefill = decode = node.req("attention_schedule", ATTENTION_SCHEDULES)
        else:
            node.opt("attention_schedule", str)
        samples = node.opt("decode_samples", int, 3, minimum=1)
        sparsity = node.opt("exploit_ffn_sparsity", bool, False)
        policy = policy_data = None
        pnode = node.child("kv_policy", required=False)
        if pnode is not None:
            policy_data = dict(pnode.data)
            policy = policy_from_node(pnode)
        node.close()
        try:
            return cls(model, batch, prompt_len, gen_len, dtypes["weight_dtype"],
                       dtypes["kv_dtype"], dtypes["act_dtype"], quant, prefill, decode, samples,
                       sparsity, policy, policy_data)
        except InputError as exc:
            raise node.error(None, str(exc)) from None

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> "LlmWorkload":
        """From plain data (the ``workload`` mapping, ``kind`` optional)."""
        doc = document_from_data(dict(data), "<llm workload>")
        return cls.from_node(doc.root("an llm workload"))

    def to_dict(self) -> dict:
        """Plain data for the result's ``workload`` section."""
        quant = None
        if self.weight_quant is not None:
            q = self.weight_quant
            quant = {"bits": q.bits, "group": q.group, "scale_dtype": q.scale_dtype,
                     "zero_point": q.zero_point}
        return {"kind": self.kind, "model": self.model.name, "batch": self.batch,
                "prompt_len": self.prompt_len, "gen_len": self.gen_len,
                "weight_dtype": self.weight_dtype, "kv_dtype": self.kv_dtype,
                "act_dtype": self.act_dtype, "weight_quant": quant,
                "attention_schedule": {"prefill": self.prefill_schedule,
                                       "decode": self.decode_schedule},
                "decode_samples": self.decode_samples,
                "exploit_ffn_sparsity": self.exploit_ffn_sparsity,
                "kv_policy": (dict(self.kv_policy_data) if self.kv_policy_data is not None
                              else {"kind": self.kv_policy.name} if self.kv_policy else None)}
