"""The attention workload: shapes, masks and dtype of one multi-head attention forward pass.

``AttentionWorkload`` is a frozen value object; ``from_node`` loads it from the ``workload``
section of a run configuration with located errors. Masks follow ``docs/schedules.md`` and are
evaluated by :mod:`memsim.workloads.masks` (the mask is an input, not a count).

    workload:
      kind: attention
      batch: 4
      heads: 32
      kv_heads: 8          # optional, default = heads (GQA/MQA when smaller)
      seq_q: 4096
      seq_k: 4096          # optional, default = seq_q
      head_dim: 64
      causal: false        # optional
      window: 256          # optional sliding window (neighbourhood attention without causal)
      block_sparse: {density: 0.25, block: 64, seed: 0}   # optional
      dtype: bf16          # optional, default bf16
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..dtypes import DTYPES, check_dtype, dtype_bytes, nbytes
from ..errors import InputError
from ..spec import Node
from . import masks
from .masks import BlockSparse

__all__ = ["AttentionWorkload", "BlockSparse"]

def _positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f'"{name}" must be an integer >= 1, got {value!r}')
    return int(value)


@dataclass(frozen=True)
class AttentionWorkload:
    """Multi-head (GQA/MQA) attention forward: ``O = softmax(Q Kᵀ / √d) V`` per (batch, head).

    ``kv_heads`` < ``heads`` gives grouped-query attention: query head ``h`` reads key/value head
    ``h // (heads // kv_heads)``. Masks (``causal``, ``window``, ``sparse``) combine by AND.
    """

    batch: int
    heads: int
    kv_heads: int
    seq_q: int
    seq_k: int
    head_dim: int
    causal: bool = False
    window: int | None = None
    sparse: BlockSparse | None = None
    dtype: str = "bf16"

    kind = "attention"

    def __post_init__(self) -> None:
        for name in ("batch", "heads", "kv_heads", "seq_q", "seq_k", "head_dim"):
            object.__setattr__(self, name, _positive_int(name, getattr(self, name)))
        if self.heads % self.kv_heads:
            raise InputError(f'"kv_heads" must divide "heads" ({self.heads}), '
                             f"got {self.kv_heads}")
        if not isinstance(self.causal, (bool, np.bool_)):
            raise InputError(f'"causal" must be true or false, got {self.causal!r}')
        object.__setattr__(self, "causal", bool(self.causal))
        if self.window is not None:
            object.__setattr__(self, "window", _positive_int("window", self.window))
        object.__setattr__(self, "sparse", masks.as_block_sparse(self.sparse))
        check_dtype(self.dtype)

    # -- loading --------------------------------------------------------------------------------
    @classmethod
    def from_node(cls, node: Node) -> "AttentionWorkload":
        """Load from a run configuration's ``workload`` mapping (``kind`` already read or not);
        rejects unknown keys. Errors name the file, line and YAML path."""
        node.opt("kind", ("attention",))
        batch = node.req("batch", int, minimum=1)
        heads = node.req("heads", int, minimum=1)
        kv_heads = node.opt("kv_heads", int, heads, minimum=1)
        if heads % kv_heads:
            raise node.error("kv_heads", f"found {kv_heads}, expected a divisor of heads "
                                         f"({heads}) so that query heads share K/V heads evenly")
        seq_q = node.req("seq_q", int, minimum=1)
        seq_k = node.opt("seq_k", int, seq_q, minimum=1)
        head_dim = node.req("head_dim", int, minimum=1)
        causal = node.opt("causal", bool, False)
        window = node.opt("window", int, None, minimum=1)
        sparse_node = node.child("block_sparse", required=False)
        sparse = None
        if sparse_node is not None:
            density = sparse_node.req("density", float, minimum=0, maximum=1)
            block = sparse_node.req("block", int, minimum=1)
            seed = sparse_node.opt("seed", int, 0, minimum=0)
            sparse_node.close()
            sparse = BlockSparse(density, block, seed)
        dtype = node.opt("dtype", DTYPES, "bf16")
        node.close()
        return cls(batch, heads, kv_heads, seq_q, seq_k, head_dim, causal, window, sparse, dtype)

    def to_dict(self) -> dict:
        """Plain data for the result's ``workload`` section (same keys as the YAML)."""
        out = {"kind": self.kind, "batch": self.batch, "heads": self.heads,
               "kv_heads": self.kv_heads, "seq_q": self.seq_q, "seq_k": self.seq_k,
               "head_dim": self.head_dim, "causal": self.causal, "window": self.window,
               "block_sparse": None, "dtype": self.dtype}
        if self.sparse is not None:
            out["block_sparse"] = {"density": self.sparse.density, "block": self.sparse.block,
                                   "seed": self.sparse.seed}
        return out

    # -- sizes ----------------------------------------------------------------------------------
    @property
    def dtype_bytes(self) -> float:
        """Bytes per element of Q, K, V and O."""
        return dtype_bytes(self.dtype)

    @property
    def group_size(self) -> int:
        """Query heads per K/V head (1 for MHA, ``heads`` for MQA)."""
        return self.heads // self.kv_heads

    @property
    def has_mask(self) -> bool:
        return self.causal or self.window is not None or self.sparse is not None

    def tensor_bytes(self) -> dict[str, int]:
        """Bytes of each tensor in the workload dtype: q, k, v, o."""
        q = self.batch * self.heads * self.seq_q * self.head_dim
        kv = self.batch * self.kv_heads * self.seq_k * self.head_dim
        return {"q": nbytes(q, self.dtype), "k": nbytes(kv, self.dtype),
                "v": nbytes(kv, self.dtype), "o": nbytes(q, self.dtype)}

    # -- work -----------------------------------------------------------------------------------
    def visible_pairs(self) -> int:
        """Number of visible (query, key) pairs of one (batch, head) under the combined mask."""
        if not self.has_mask:
            return self.seq_q * self.seq_k
        pairs, _, _ = masks.visible_counts(self.seq_q, self.seq_k, self.causal, self.window,
                                           self.sparse)
        return pairs

    @property
    def dense_flops(self) -> int:
        """Tensor FLOPs without masks: ``4 · batch · heads · seq_q · seq_k · head_dim``
        (2 for Q Kᵀ, 2 for P V)."""
        return 4 * self.batch * self.heads * self.seq_q * self.seq_k * self.head_dim

    @property
    def flops(self) -> int:
        """Useful tensor FLOPs: 4·d per visible (q, k) pair, over all batches and heads.
        Schedules compute whole tiles, so their executed FLOPs are at least this."""
        return 4 * self.batch * self.heads * self.visible_pairs() * self.head_dim

    @property
    def exp_ops(self) -> int:
        """Useful exponentials (one per visible pair), over all batches and heads."""
        return self.batch * self.heads * self.visible_pairs()
