"""Public API: run an attention schedule's tiling on real numbers, and the float64 reference.

    from memsim.numerics import run_attention, reference_attention
    res = run_attention("flash2", q, k, v, block_q=64, block_k=64, causal=True)
    ref, ref_lse = reference_attention(q, k, v, causal=True)
    err = relative_error(res.output, ref)
    res.read_bytes, res.write_bytes, res.read_elements["K"]

Shapes: q (B, H, Nq, d); k and v (B, Hkv, Nk, d) with H a multiple of Hkv (GQA/MQA: query
head h uses key/value head h // (H / Hkv)). float32 inputs run in float32 arithmetic, float64
in float64; other dtypes are converted to float32.

Conventions: scores are ``scale * q.k`` with ``scale = 1/sqrt(d)`` by default; ``lse`` is the
natural log-sum-exp of the visible scores of each row. A fully masked row has O = 0 and
L = -inf (FlashAttention's convention; no NaN). The mask and traffic conventions are those of
``docs/schedules.md``; the block-sparse layout comes from ``memsim.workloads.masks``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

from memsim.bounds.closed_forms import flash_decoding_splits
from memsim.errors import InputError
from memsim.workloads import masks

from ._driver import CODES, run_heads
from ._tiles import N_TENSORS, TENSOR_KIND, TENSORS, tile_activity
from .rounding import round_array, round_code

__all__ = ["SCHEDULES", "AttentionNumerics", "run_attention", "reference_attention",
           "relative_error"]

SCHEDULES = ("standard", "flash1", "flash2", "square_tiling", "chunked", "flash_decoding")
_DEFAULT_BLOCKS = {"standard": (64, 64), "flash1": (64, 64), "flash2": (64, 64),
                   "chunked": (1024, 4096), "flash_decoding": (None, 64)}
_DEFAULT_SQUARE_BLOCK = 32
_DEFAULT_NUM_SMS = 132  # H100 SXM; only used by the flash_decoding split heuristic


def _frozen(d: Mapping) -> Mapping:
    return MappingProxyType(dict(d))


@dataclass(frozen=True)
class AttentionNumerics:
    """Result of :func:`run_attention`.

    ``output`` (B, H, Nq, d) and ``lse`` (B, H, Nq; None for ``standard``, which never forms
    it) are in the working precision. ``read_elements`` / ``write_elements`` map each tensor
    class (Q, K, V, O, S, P, A, L, l, m, D, acc, ssum, smax, O_partial, L_partial: the names of
    ``memsim.bounds.closed_forms``) to the elements moved across the SRAM boundary, summed over
    batch and heads; ``element_bytes`` gives each class's size in bytes.
    ``params`` holds the resolved block sizes, splits and mask. ``underflow_rows`` counts rows
    of ``square_tiling`` whose every exp underflowed (their output is not trustworthy)."""

    schedule: str
    output: np.ndarray
    lse: np.ndarray | None
    read_elements: Mapping[str, int]
    write_elements: Mapping[str, int]
    element_bytes: Mapping[str, float]
    params: Mapping[str, Any] = field(default_factory=dict)
    underflow_rows: int = 0

    def _bytes(self, elements: Mapping[str, int]) -> int | float:
        total = sum(n * self.element_bytes[name] for name, n in elements.items())
        return int(total) if float(total).is_integer() else total  # int4: 0.5 B elements

    @property
    def read_bytes(self) -> int | float:
        """Bytes read into SRAM (l2.read_bytes in the simulator), all tensors."""
        return self._bytes(self.read_elements)

    @property
    def write_bytes(self) -> int | float:
        """Bytes written from SRAM (l2.write_bytes in the simulator), all tensors."""
        return self._bytes(self.write_elements)


def _check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InputError(f'"{name}" must be an integer >= 1, got {value!r}')
    return int(value)


def _prepare(q, k, v):
    arrays = [np.asarray(x) for x in (q, k, v)]
    for name, x in zip("qkv", arrays):
        if x.ndim != 4:
            raise InputError(f'"{name}" must have shape (batch, heads, seq, head_dim), '
                             f'got shape {x.shape}')
    q, k, v = arrays
    dtype = q.dtype if q.dtype in (np.float32, np.float64) else np.dtype(np.float32)
    if k.shape != v.shape or q.shape[0] != k.shape[0] or q.shape[3] != k.shape[3]:
        raise InputError(f'"k" and "v" must have shape (batch, kv_heads, seq_k, head_dim) '
                         f'matching q {q.shape}, got k {k.shape} and v {v.shape}')
    if k.shape[1] < 1 or q.shape[1] % k.shape[1]:
        raise InputError(f'"heads" ({q.shape[1]}) must be a multiple of "kv_heads" '
                         f'({k.shape[1]})')
    if min(q.shape) < 1 or k.shape[2] < 1:
        raise InputError(f"empty attention inputs: q {q.shape}, k {k.shape}")
    return tuple(np.ascontiguousarray(x, dtype=dtype) for x in (q, k, v))


def _mask_args(nq: int, nk: int, causal: bool, window: int | None, sparse: Any):
    """Kernel mask arguments: (causal, window or 0, layout, layout block, BlockSparse|None)."""
    if not isinstance(causal, (bool, np.bool_)):
        raise InputError(f'"causal" must be true or false, got {causal!r}')
    if window is not None:
        window = _check_positive_int("window", window)
    sp = masks.as_block_sparse(sparse)
    if sp is None:
        layout, sblock = np.ones((1, 1), dtype=np.bool_), max(nq, nk) + 1
    else:
        layout = masks.block_sparse_layout(nq, nk, sp.block, sp.density, sp.seed)
        sblock = sp.block
    return bool(causal), window or 0, np.ascontiguousarray(layout, dtype=np.bool_), sblock, sp


def _square_offsets(q: np.ndarray, k: np.ndarray, scale: float) -> np.ndarray:
    """Per-row offsets c_r for square_tiling: scale * |q_r| * max_j |k_j| (Cauchy-Schwarz), an
    upper bound of every score of row r, so exp(s - c_r) <= 1 never overflows. A per-row
    constant cancels exactly in D^-1 A. O((Nq + Nk) d) work outside the schedule."""
    group = q.shape[1] // k.shape[1]
    qn = np.linalg.norm(q.astype(np.float64), axis=-1)             # (B, H, Nq)
    kmax = np.linalg.norm(k.astype(np.float64), axis=-1).max(-1)   # (B, Hkv)
    kmax = np.repeat(kmax, group, axis=1)[:, :, None]
    return np.ascontiguousarray(abs(scale) * qn * kmax, dtype=q.dtype)


def run_attention(schedule: str, q, k, v, *, block_q: int | None = None,
                  block_k: int | None = None, block: int | None = None,
                  splits: int | None = None, causal: bool = False, window: int | None = None,
                  sparse: Any = None, scale: float | None = None,
                  dtype_round: str | None = None, intermediate_round: str | None = None,
                  dtype_bytes: float | None = None, intermediate_bytes: float | None = None,
                  num_sms: int = _DEFAULT_NUM_SMS) -> AttentionNumerics:
    """Run ``schedule``'s tiling on q, k, v and count its SRAM-boundary traffic.

    ``block_q``/``block_k``: tile sizes (defaults: 64 x 64; chunked 1024 x 4096, capped at
    the sequence lengths; flash_decoding uses all queries as one block). ``block``: the square
    tile of ``square_tiling`` (default 32). ``splits``: flash_decoding's split count (default:
    the heuristic of docs/schedules.md with ``num_sms`` SMs). ``sparse``: None, a
    ``masks.BlockSparse`` or a mapping {density, block, seed}. ``dtype_round`` ('bf16' or
    'fp16') rounds q, k, v before and O after the kernel; ``intermediate_round`` rounds stored
    S, P, A (standard, square_tiling). ``dtype_bytes`` (default: 2 when rounded to bf16/fp16,
    else the input itemsize) and ``intermediate_bytes`` (default ``dtype_bytes``) only size the
    byte counts."""
    if schedule not in SCHEDULES:
        raise InputError(f'"schedule" must be one of {", ".join(SCHEDULES)}, got {schedule!r}')
    q, k, v = _prepare(q, k, v)
    nb, nh, nq, d = q.shape
    nk = k.shape[2]
    dcode = round_code(dtype_round, "dtype_round")
    icode = round_code(intermediate_round, "intermediate_round")
    if dcode:
        q, k, v = (round_array(x, dtype_round) for x in (q, k, v))
    scale = 1 / math.sqrt(d) if scale is None else float(scale)
    wscale = q.dtype.type(scale)
    causal, window_k, layout, sblock, sp = _mask_args(nq, nk, causal, window, sparse)
    counts = np.zeros((nb * nh, 2, N_TENSORS), dtype=np.int64)
    out = np.empty_like(q)
    lse = np.empty((nb, nh, nq), dtype=q.dtype)
    params: dict[str, Any] = {"causal": causal, "window": window,
                              "sparse": None if sp is None else dict(vars(sp)), "scale": scale}
    dummy = np.zeros((1, 1, 1), dtype=q.dtype)
    offsets, aux, ns = dummy, dummy, 1
    if schedule == "square_tiling":
        br = bc = _DEFAULT_SQUARE_BLOCK if block is None else _check_positive_int("block", block)
        offsets = _square_offsets(q, k, scale)
        params["block"] = br
    else:
        dq, dk = _DEFAULT_BLOCKS[schedule]
        br = min(dq, nq) if block_q is None and dq else block_q
        bc = _check_positive_int("block_k", min(dk, nk) if block_k is None else block_k)
        if schedule == "flash_decoding":
            br = nq  # one block of all queries (decode: Nq is small)
        br = _check_positive_int("block_q", br)
        params.update(block_q=br, block_k=bc)
    act = tile_activity(nq, nk, br, bc, causal, window_k, layout, sblock)
    if schedule == "flash_decoding":
        # The split heuristic is a schedule rule, shared with the closed forms (not a count).
        ns = (_check_positive_int("splits", splits) if splits is not None
              else flash_decoding_splits(nb, nh, num_sms, act.shape[1]))
        params["splits"] = ns
    elif schedule == "flash1":
        aux = np.empty((nb, nh, nq), dtype=q.dtype)  # l; lse receives m
    cfg = np.array([br, bc, causal, window_k, sblock, ns, icode], dtype=np.int64)
    run_heads(CODES[schedule], q, k, v, wscale, cfg, layout, act, offsets, out, lse, aux, counts)
    underflow = 0
    if schedule == "standard":
        lse = None
    elif schedule == "flash1":  # L = m + log(l), from the l and m arrays the kernel wrote
        with np.errstate(divide="ignore", invalid="ignore"):
            lse = np.where(aux != 0, lse + np.log(aux), -np.inf).astype(q.dtype)
    elif schedule == "square_tiling":
        # A row with visible keys but D = 0: every exp(s - c_r) underflowed.
        vis_rows = np.asarray(masks.visible(np.arange(nq)[:, None], np.arange(nk)[None, :],
                                            nq, nk, causal, window, sp)).any(axis=1)
        underflow = int((np.isneginf(lse) & vis_rows).sum())
    if dcode:
        out = round_array(out, dtype_round)
    e = (2.0 if dcode in (1, 2) else float(q.dtype.itemsize)) if dtype_bytes is None \
        else float(dtype_bytes)
    ib = e if intermediate_bytes is None else float(intermediate_bytes)
    sizes = {name: {"e": e, "i": ib, "f32": 4.0}[TENSOR_KIND[name]] for name in TENSORS}
    total = counts.sum(axis=0)
    return AttentionNumerics(
        schedule=schedule, output=out, lse=lse,
        read_elements=_frozen({n: int(total[0, t]) for t, n in enumerate(TENSORS)}),
        write_elements=_frozen({n: int(total[1, t]) for t, n in enumerate(TENSORS)}),
        element_bytes=_frozen(sizes), params=_frozen(params), underflow_rows=underflow)


def reference_attention(q, k, v, *, causal: bool = False, window: int | None = None,
                        sparse: Any = None, scale: float | None = None):
    """Naive float64 attention (whole score matrix, max-subtracted softmax) with the same mask
    and GQA conventions; returns ``(output, lse)``. Fully masked rows: O = 0, L = -inf."""
    q, k, v = (np.asarray(x, dtype=np.float64) for x in (q, k, v))
    nb, nh, nq, d = q.shape
    nk = k.shape[2]
    group = nh // k.shape[1]
    k = np.repeat(k, group, axis=1)
    v = np.repeat(v, group, axis=1)
    scale = 1 / math.sqrt(d) if scale is None else float(scale)
    vis = masks.visible(np.arange(nq)[:, None], np.arange(nk)[None, :], nq, nk, bool(causal),
                        window, sparse)
    s = np.where(vis, scale * np.einsum("bhqd,bhkd->bhqk", q, k), -np.inf)
    mx = s.max(axis=-1, keepdims=True)
    empty = np.isneginf(mx)
    p = np.exp(s - np.where(empty, 0.0, mx))
    total = p.sum(axis=-1, keepdims=True)
    out = np.einsum("bhqk,bhkd->bhqd", p / np.where(empty, 1.0, total), v)
    with np.errstate(divide="ignore"):
        lse = np.where(empty, -np.inf, mx + np.log(np.where(empty, 1.0, total)))[..., 0]
    return out, lse


def relative_error(x, ref) -> float:
    """||x - ref|| / ||ref|| (Frobenius); NaN or inf anywhere in x or ref gives inf, so it never
    passes a tolerance. With ref = 0 (every row masked) it is ||x||."""
    x = np.asarray(x, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(ref))):
        return math.inf
    den = np.linalg.norm(ref)
    num = np.linalg.norm(x - ref)
    return float(num / den) if den > 0 else float(num)
