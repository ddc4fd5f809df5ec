"""Transformer model presets: the architecture numbers that decide FLOPs and bytes.

A ``ModelSpec`` is a frozen value object loaded strictly from YAML (``memsim/llm/models/``
ships the presets; a path to any YAML file with the same keys works too):

    version: 1
    name: llama-3-8b
    source: "where every number comes from"
    layers: 32
    hidden: 4096
    heads: 32
    kv_heads: 8              # < heads: grouped-query; 1: multi-query
    head_dim: 128
    ffn: {size: 14336, kind: gated, activation: silu, sparsity: 0.0}
    vocab: 128256
    norm: rmsnorm            # rmsnorm | layernorm
    position: rope           # rope | learned | alibi
    max_positions: 8192
    tied_embeddings: false
    bias: false              # biases in the linear layers

Optional: ``sliding_window`` (tokens), ``norms_per_layer`` (default 2; 1 for Falcon's parallel
block), ``parallel_attention`` (attention and MLP read the same normalised input),
``position_rows`` (rows of a learned position table; OPT has max_positions + 2), ``description``.

``ffn.sparsity`` is the fraction of FFN neurons that are zero after the activation (ReLU models,
"LLM in a flash" Sec. 3): an FFN that exploits it reads only ``1 - sparsity`` of its
down-projection (and, with a predictor, up-projection) weights. Default 0.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..spec import Document, document_from_data, find_preset, load_document, preset_names

__all__ = ["ModelSpec", "FfnSpec", "load_model", "model_names", "model_from_data"]

_MODELS_DIR = Path(__file__).parent / "models"
SUPPORTED_VERSIONS = (1,)


@dataclass(frozen=True)
class FfnSpec:
    """The feed-forward block: ``gated`` (SwiGLU: gate, up, down) or ``plain`` (up, down)."""

    size: int
    kind: str                  # gated | plain
    activation: str            # silu | relu | gelu
    sparsity: float = 0.0

    @property
    def gated(self) -> bool:
        return self.kind == "gated"


@dataclass(frozen=True)
class ModelSpec:
    """A decoder-only transformer. Counts are per model; ``*_bytes`` helpers take dtype sizes."""

    name: str
    source: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    ffn: FfnSpec
    vocab: int
    norm: str
    position: str
    max_positions: int
    tied_embeddings: bool
    bias: bool
    sliding_window: int | None = None
    norms_per_layer: int = 2
    parallel_attention: bool = False
    position_rows: int = 0
    description: str = ""

    def __post_init__(self) -> None:
        if self.heads % self.kv_heads:
            raise InputError(f"model {self.name!r}: kv_heads ({self.kv_heads}) must divide "
                             f"heads ({self.heads})")

    # -- shapes ---------------------------------------------------------------------------------
    @property
    def q_size(self) -> int:
        """Width of the query projection output (heads · head_dim)."""
        return self.heads * self.head_dim

    @property
    def kv_size(self) -> int:
        """Width of one of the key/value projection outputs (kv_heads · head_dim)."""
        return self.kv_heads * self.head_dim

    @property
    def norm_params(self) -> int:
        """Parameters of one norm: a scale (RMSNorm) or a scale and a shift (LayerNorm)."""
        return self.hidden * (2 if self.norm == "layernorm" else 1)

    # -- parameter counts -----------------------------------------------------------------------
    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """The weight matrices of one layer as (in_features, out_features)."""
        h, f = self.hidden, self.ffn.size
        shapes = {"q_proj": (h, self.q_size), "k_proj": (h, self.kv_size),
                  "v_proj": (h, self.kv_size), "o_proj": (self.q_size, h)}
        if self.ffn.gated:
            shapes.update(gate_proj=(h, f), up_proj=(h, f), down_proj=(f, h))
        else:
            shapes.update(up_proj=(h, f), down_proj=(f, h))
        return shapes

    def layer_params(self) -> int:
        """Parameters of one transformer layer (linear weights, biases, norms)."""
        total = 0
        for fan_in, fan_out in self.linear_shapes().values():
            total += fan_in * fan_out + (fan_out if self.bias else 0)
        return total + self.norms_per_layer * self.norm_params

    def linear_params(self) -> int:
        """Weight-matrix parameters of all layers (no biases, norms or embeddings)."""
        return self.layers * sum(a * b for a, b in self.linear_shapes().values())

    def embedding_params(self) -> int:
        """Token embeddings plus a learned position table (if any)."""
        return self.vocab * self.hidden + self.position_rows * self.hidden

    def lm_head_params(self) -> int:
        """LM-head weights that are stored separately (0 when tied to the embeddings)."""
        return 0 if self.tied_embeddings else self.vocab * self.hidden

    def params(self) -> int:
        """All parameters: layers, embeddings, final norm, untied LM head."""
        return (self.layers * self.layer_params() + self.embedding_params() + self.norm_params
                + self.lm_head_params())

    # -- KV cache -------------------------------------------------------------------------------
    def kv_elements_per_token(self) -> int:
        """K and V elements one token adds to the cache over all layers:
        ``2 · layers · kv_heads · head_dim``."""
        return 2 * self.layers * self.kv_size

    def kv_bytes_per_token(self, dtype_bytes: float) -> float:
        """Bytes per cached token at ``dtype_bytes`` per element (OPT-13B fp16: 819,200)."""
        return self.kv_elements_per_token() * dtype_bytes

    def to_dict(self) -> dict:
        """Plain data (the YAML keys)."""
        out = {"name": self.name, "layers": self.layers, "hidden": self.hidden,
               "heads": self.heads, "kv_heads": self.kv_heads, "head_dim": self.head_dim,
               "ffn": {"size": self.ffn.size, "kind": self.ffn.kind,
                       "activation": self.ffn.activation, "sparsity": self.ffn.sparsity},
               "vocab": self.vocab, "norm": self.norm, "position": self.position,
               "max_positions": self.max_positions, "tied_embeddings": self.tied_embeddings,
               "bias": self.bias, "sliding_window": self.sliding_window,
               "norms_per_layer": self.norms_per_layer,
               "parallel_attention": self.parallel_attention,
               "position_rows": self.position_rows, "source": self.source}
        return out


def model_names() -> list[str]:
    """Names of the shipped model presets."""
    return preset_names(_MODELS_DIR)


def load_model(name_or_path: "str | Path | ModelSpec") -> ModelSpec:
    """A preset by name (``llama-2-7b``) or a model YAML by path; a miss lists the presets."""
    if isinstance(name_or_path, ModelSpec):
        return name_or_path
    ref = str(name_or_path)
    path = find_preset(ref, _MODELS_DIR)
    if path is None:
        raise InputError(f"unknown model {ref!r}, expected a preset "
                         f"({', '.join(model_names())}) or a path to a model YAML")
    return _from_document(load_document(path))


def model_from_data(data: dict, name: str = "<model>") -> ModelSpec:
    """A model from already-parsed data (e.g. an inline ``model:`` mapping)."""
    return _from_document(document_from_data(data, name))


def _from_document(doc: Document) -> ModelSpec:
    root = doc.root("a model description")
    root.version(SUPPORTED_VERSIONS)
    name = root.req("name", str)
    source = root.req("source", str)
    description = root.opt("description", str, "")
    layers = root.req("layers", int, minimum=1)
    hidden = root.req("hidden", int, minimum=1)
    heads = root.req("heads", int, minimum=1)
    kv_heads = root.req("kv_heads", int, minimum=1)
    head_dim = root.req("head_dim", int, minimum=1)
    if heads % kv_heads:
        raise root.error("kv_heads", f"found {kv_heads}, expected a divisor of heads ({heads})")
    fnode = root.child("ffn")
    ffn = FfnSpec(fnode.req("size", int, minimum=1), fnode.req("kind", ("gated", "plain")),
                  fnode.req("activation", ("silu", "relu", "gelu")),
                  fnode.opt("sparsity", float, 0.0, minimum=0.0, maximum=0.999))
    fnode.close()
    vocab = root.req("vocab", int, minimum=1)
    norm = root.req("norm", ("rmsnorm", "layernorm"))
    position = root.req("position", ("rope", "learned", "alibi"))
    max_positions = root.req("max_positions", int, minimum=1)
    tied = root.req("tied_embeddings", bool)
    bias = root.req("bias", bool)
    window = root.opt("sliding_window", int, None, minimum=1)
    norms_per_layer = root.opt("norms_per_layer", int, 2, minimum=1, maximum=2)
    parallel = root.opt("parallel_attention", bool, False)
    rows = root.opt("position_rows", int, 0, minimum=0)
    if position == "learned" and rows == 0:
        raise root.error("position_rows", "missing: a learned position table needs its row "
                                          "count (e.g. max_positions + 2 for OPT)")
    root.close()
    return ModelSpec(name, source, layers, hidden, heads, kv_heads, head_dim, ffn, vocab, norm,
                     position, max_positions, tied, bias, window, norms_per_layer, parallel, rows,
                     description)
