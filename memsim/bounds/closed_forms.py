"""Closed-form SRAM-boundary traffic, FLOPs and exponentials of every schedule.

Written from ``docs/schedules.md`` only (never from the simulator), so that the simulator's byte
counters can be checked against an independent derivation. All counts use the actual sizes of
edge blocks; masks enter through :func:`memsim.workloads.masks.active_tiles`, and every sum is
numpy arithmetic over block sizes and the active-tile array (no per-tile Python loop), so
``seq = 131072`` takes well under a second.

Counts are per (batch, query head) and then multiplied by ``batch * heads``: under GQA every
query head loads its own copy of K/V at the SRAM boundary (docs/schedules.md, *Notation*).

Units: ``*_elements`` are element counts; ``*_bytes`` are bytes (``element_bytes`` may be 0.5
for packed int4, so a byte count is an ``int`` when integral and a ``float`` otherwise).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from memsim.errors import InputError
from memsim.workloads.masks import active_tiles, block_sizes

__all__ = [
    "TensorIO",
    "Traffic",
    "ATTENTION_SCHEDULES",
    "STATS_BYTES",
    "CHUNKED_DEFAULT_BLOCK_Q",
    "CHUNKED_DEFAULT_BLOCK_K",
    "sram_elements",
    "flash1_block_sizes",
    "square_tiling_block",
    "flash_decoding_splits",
    "attention_traffic",
    "gemm_traffic",
]

#: Softmax statistics (l, m, L, D, chunk sums/maxima, partial outputs) are always fp32.
STATS_BYTES = 4
#: Rabe & Staats defaults (query_chunk_size, key_chunk_size).
CHUNKED_DEFAULT_BLOCK_Q = 1024
CHUNKED_DEFAULT_BLOCK_K = 4096
ATTENTION_SCHEDULES = ("standard", "flash1", "flash2", "square_tiling", "chunked",
                       "flash_decoding")
_ELEMENT_SIZES = (0.5, 1, 2, 4, 8)


def _nbytes(elements: int, element_bytes: float) -> int | float:
    value = elements * element_bytes
    return int(value) if float(value).is_integer() else float(value)


@dataclass(frozen=True)
class TensorIO:
    """Elements of one tensor class read into / written out of SRAM, and its element size."""

    read_elements: int
    write_elements: int
    element_bytes: float

    @property
    def read_bytes(self) -> int | float:
        return _nbytes(self.read_elements, self.element_bytes)

    @property
    def write_bytes(self) -> int | float:
        return _nbytes(self.write_elements, self.element_bytes)


@dataclass(frozen=True)
class Traffic:
    """Exact SRAM-boundary traffic of one kernel (all batches and heads).

    ``tensors`` maps a tensor class (``"Q"``, ``"K"``, ``"V"``, ``"O"``, ``"S"``, ``"P"``,
    ``"A"``, ``"l"``, ``"m"``, ``"L"``, ``"D"``, ``"acc"``, ``"ssum"``, ``"smax"``,
    ``"O_partial"``, ``"L_partial"``; GEMM: ``"A"``, ``"B"``, ``"C"``, ``"B_scales"``) to its
    :class:`TensorIO`. ``flops`` are tensor-core FLOPs (2 per multiply-add), ``exps`` the
    exponentials (special-function unit).
    """

    tensors: Mapping[str, TensorIO] = field(compare=True)
    flops: int
    exps: int

    @property
    def read_bytes(self) -> int | float:
        return _sum_bytes(t.read_bytes for t in self.tensors.values())

    @property
    def write_bytes(self) -> int | float:
        return _sum_bytes(t.write_bytes for t in self.tensors.values())

    @property
    def total_bytes(self) -> int | float:
        return _sum_bytes((self.read_bytes, self.write_bytes))

    @property
    def read_elements(self) -> int:
        return sum(t.read_elements for t in self.tensors.values())

    @property
    def write_elements(self) -> int:
        return sum(t.write_elements for t in self.tensors.values())

    def bytes_by_tensor(self) -> dict[str, tuple[int | float, int | float]]:
        """``{tensor: (read_bytes, write_bytes)}``, tensors with no traffic left out."""
        return {k: (t.read_bytes, t.write_bytes) for k, t in self.tensors.items()
                if t.read_elements or t.write_elements}


def _sum_bytes(values) -> int | float:
    total = sum(values)
    return int(total) if float(total).is_integer() else float(total)


class _Builder:
    """Accumulates per-head element counts, then scales by batch * heads."""

    def __init__(self) -> None:
        self.io: dict[str, list] = {}

    def add(self, name: str, element_bytes: float, read: int = 0, write: int = 0) -> None:
        entry = self.io.setdefault(name, [0, 0, element_bytes])
        entry[0] += int(read)
        entry[1] += int(write)

    def build(self, scale: int, flops: int, exps: int) -> Traffic:
        tensors = {k: TensorIO(r * scale, w * scale, b) for k, (r, w, b) in self.io.items()}
        return Traffic(tensors, int(flops) * scale, int(exps) * scale)


# --------------------------------------------------------------------------- default rules

def _pos_int(name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise InputError(f'"{name}" must be an integer >= {minimum}, got {value!r}')
    return int(value)


def sram_elements(sram_bytes: float, dtype_bytes: float) -> int:
    """M in elements of the workload dtype: ``floor(sram_bytes / dtype_bytes)``."""
    if dtype_bytes not in _ELEMENT_SIZES:
        raise InputError(f'"dtype_bytes" must be one of {_ELEMENT_SIZES}, got {dtype_bytes!r}')
    if sram_bytes <= 0:
        raise InputError(f'"sram_bytes" must be > 0, got {sram_bytes!r}')
    return int(sram_bytes // dtype_bytes)


def flash1_block_sizes(sram_elements: int, head_dim: int) -> tuple[int, int]:
    """FlashAttention Algorithm 1, line 1: ``Bc = ceil(M / 4d)``, ``Br = min(ceil(M / 4d), d)``.

    Returns ``(block_q, block_k) = (Br, Bc)``; M in elements of the workload dtype.
    """
    m = _pos_int("sram_elements", sram_elements)
    d = _pos_int("head_dim", head_dim)
    bc = -(-m // (4 * d))
    return min(bc, d), bc


def square_tiling_block(sram_elements: int) -> int:
    """Saha & Ye SquareTilingAttention: ``B = floor(sqrt(M / 4))`` (needs M >= 4)."""
    m = _pos_int("sram_elements", sram_elements, 4)
    return math.isqrt(m) // 2  # floor(sqrt(M)/2) == floor(sqrt(M/4)) for integer M


def flash_decoding_splits(batch: int, heads: int, num_sms: int, num_key_blocks: int) -> int:
    """Split-KV heuristic: the smallest s with ``batch * heads * s >= num_sms``, capped at
    ``Tc`` (the number of key blocks), and at least 1."""
    bh = _pos_int("batch", batch) * _pos_int("heads", heads)
    s = max(1, -(-_pos_int("num_sms", num_sms) // bh))
    return min(s, _pos_int("num_key_blocks", num_key_blocks))


# --------------------------------------------------------------------------- attention

def _tile_sums(act: np.ndarray | None, r: np.ndarray, c: np.ndarray):
    """Per row block: active tiles and active key columns (sum of Bc_j); per key block: active
    tiles. ``act=None`` means every tile is active. Avoids int copies of the (Tr, Tc) array:
    all key blocks have width Bc except the last."""
    tr, tc = len(r), len(c)
    if act is None:
        return (np.full(tr, tc, dtype=np.int64), np.full(tc, tr, dtype=np.int64),
                np.full(tr, int(c.sum()), dtype=np.int64))
    n_row = np.count_nonzero(act, axis=1).astype(np.int64)
    n_col = np.count_nonzero(act, axis=0).astype(np.int64)
    row_keys = n_row * c[0] - act[:, -1].astype(np.int64) * (c[0] - c[-1])
    return n_row, n_col, row_keys


def attention_traffic(schedule: str, *, seq_q: int, seq_k: int, head_dim: int,
                      dtype_bytes: float, batch: int = 1, heads: int = 1,
                      kv_heads: int | None = None, block_q: int | None = None,
                      block_k: int | None = None, causal: bool = False,
                      window: int | None = None, sparse: Any = None,
                      intermediate_bytes: float | None = None, splits: int | None = None,
                      block: int | None = None, sram_elements: int | None = None,
                      num_sms: int | None = None, reload_q: bool = False) -> Traffic:
    """Exact SRAM-boundary traffic of an attention forward schedule (docs/schedules.md).

    ``schedule``: one of :data:`ATTENTION_SCHEDULES`. Block sizes: ``block_q``/``block_k``
    (``flash1`` derives missing ones from ``sram_elements`` by :func:`flash1_block_sizes`;
    ``chunked`` defaults to 1024/4096; ``flash_decoding`` uses only ``block_k``, its query rows
    form one block); ``square_tiling`` takes ``block`` (default
    :func:`square_tiling_block` of ``sram_elements``). ``flash_decoding`` takes ``splits`` or
    ``num_sms`` for :func:`flash_decoding_splits`. ``sparse`` is None, a
    :class:`~memsim.workloads.masks.BlockSparse` or a mapping ``{density, block, seed}``.
    ``intermediate_bytes`` (S, P, A) defaults to ``dtype_bytes``. ``reload_q`` (flash2 only):
    Q_i is loaded with every active K/V block instead of once per row block.
    """
    nq, nk = _pos_int("seq_q", seq_q), _pos_int("seq_k", seq_k)
    d = _pos_int("head_dim", head_dim)
    bh = _pos_int("batch", batch) * _pos_int("heads", heads)
    kvh = heads if kv_heads is None else _pos_int("kv_heads", kv_heads)
    if heads % kvh:
        raise InputError(f'"kv_heads" must divide "heads" ({heads}), got {kvh}')
    e = dtype_bytes
    if e not in _ELEMENT_SIZES:
        raise InputError(f'"dtype_bytes" must be one of {_ELEMENT_SIZES}, got {e!r}')
    ie = e if intermediate_bytes is None else intermediate_bytes
    if ie not in _ELEMENT_SIZES:
        raise InputError(f'"intermediate_bytes" must be one of {_ELEMENT_SIZES}, got {ie!r}')
    mask = dict(causal=causal, window=window, sparse=sparse)

    if schedule == "flash1" and (block_q is None or block_k is None):
        if sram_elements is None:
            raise InputError('flash1 needs "block_q" and "block_k" or "sram_elements"')
        dq, dk = flash1_block_sizes(sram_elements, d)
        block_q = dq if block_q is None else block_q
        block_k = dk if block_k is None else block_k
    elif schedule == "chunked":
        block_q = CHUNKED_DEFAULT_BLOCK_Q if block_q is None else block_q
        block_k = CHUNKED_DEFAULT_BLOCK_K if block_k is None else block_k
    elif schedule == "square_tiling":
        if block is None:
            if sram_elements is None:
                raise InputError('square_tiling needs "block" or "sram_elements"')
            block = square_tiling_block(sram_elements)
        block_q = block_k = _pos_int("block", block)
    elif schedule == "flash_decoding":
        block_q = nq
    if schedule not in ATTENTION_SCHEDULES:
        raise InputError(f'unknown attention schedule "{schedule}"; known: '
                         f'{", ".join(ATTENTION_SCHEDULES)}')
    if block_q is None or block_k is None:
        raise InputError(f'{schedule} needs "block_q" and "block_k"')
    br, bc = _pos_int("block_q", block_q), _pos_int("block_k", block_k)

    r = block_sizes(nq, br)          # actual row-block heights Br_i
    c = block_sizes(nk, bc)          # actual key-block widths Bc_j
    if causal or window is not None or sparse is not None:
        act = active_tiles(nq, nk, br, bc, **mask)
    else:
        act = None
    n_act_row, n_act_col, row_keys = _tile_sums(act, r, c)
    rows_act = int(r @ n_act_row)    # sum over active tiles of Br_i
    cols_act = int(n_act_col @ c)    # sum over active tiles of Bc_j
    pairs_act = int(r @ row_keys)    # sum over active tiles of Br_i * Bc_j
    b = _Builder()

    if schedule == "standard":
        tr, tc = len(r), len(c)
        b.add("Q", e, read=tc * nq * d)
        b.add("K", e, read=tr * nk * d)
        b.add("S", ie, write=nq * nk, read=nq * nk)
        b.add("P", ie, write=nq * nk, read=nq * nk)
        b.add("V", e, read=tr * nk * d)
        b.add("O", e, write=nq * d)
        return b.build(bh, 4 * nq * nk * d, nq * nk)   # standard computes every tile

    if schedule == "flash1":
        kv_cols = int((n_act_col > 0) @ c)   # key blocks with an active tile
        b.add("K", e, read=kv_cols * d)
        b.add("V", e, read=kv_cols * d)
        b.add("Q", e, read=rows_act * d)
        b.add("O", e, read=rows_act * d, write=nq * d + rows_act * d)   # init + per tile
        b.add("l", STATS_BYTES, read=rows_act, write=nq + rows_act)
        b.add("m", STATS_BYTES, read=rows_act, write=nq + rows_act)
    elif schedule == "flash2":
        # every row block's thread block loads its Q_i once, or (reload_q) with every tile
        b.add("Q", e, read=rows_act * d if reload_q else nq * d)
        b.add("K", e, read=cols_act * d)
        b.add("V", e, read=cols_act * d)
        b.add("O", e, write=nq * d)
        b.add("L", STATS_BYTES, write=nq)
    elif schedule == "square_tiling":
        td = -(-d // br)
        # Phase 1: Q[i, l] and K^T[l, j] over all d-blocks l sum to Br_i*d and d*Bc_j.
        b.add("Q", e, read=rows_act * d)
        b.add("K", e, read=cols_act * d)
        b.add("A", ie, write=pairs_act, read=td * pairs_act)   # phase 2 reads A once per l
        b.add("D", STATS_BYTES, write=nq, read=nq)
        b.add("V", e, read=cols_act * d)
        b.add("O", e, write=nq * d)
    elif schedule == "chunked":
        b.add("Q", e, read=rows_act * d)
        b.add("K", e, read=cols_act * d)
        b.add("V", e, read=cols_act * d)
        for name, width in (("acc", d), ("ssum", 1), ("smax", 1)):
            b.add(name, STATS_BYTES, write=rows_act * width, read=rows_act * width)
        b.add("O", e, write=nq * d)
    else:  # flash_decoding: all nq query rows form one row block
        tc = len(c)
        if splits is None:
            if num_sms is None:
                raise InputError('flash_decoding needs "splits" or "num_sms"')
            splits = flash_decoding_splits(batch, heads, num_sms, tc)
        s = _pos_int("splits", splits)
        per = -(-tc // s)
        col_act = act[0] if act is not None else np.ones(tc, dtype=bool)
        # Splits cover [s*per, (s+1)*per); some trailing splits may be empty.
        split_of = np.arange(tc) // per
        live = np.bincount(split_of[col_act], minlength=s)[:s] > 0
        n_live = int(live.sum())
        kv = int(c[col_act].sum())
        b.add("Q", e, read=n_live * nq * d)
        b.add("K", e, read=kv * d)
        b.add("V", e, read=kv * d)
        b.add("O_partial", STATS_BYTES, write=n_live * nq * d, read=n_live * nq * d)
        b.add("L_partial", STATS_BYTES, write=n_live * nq, read=n_live * nq)
        b.add("O", e, write=nq * d)
    return b.build(bh, 4 * d * pairs_act, pairs_act)


# --------------------------------------------------------------------------- GEMM

def gemm_traffic(m: int, n: int, k: int, dtype_bytes: float, tile_m: int, tile_n: int,
                 tile_k: int, *, b_dtype_bytes: float | None = None,
                 group_size: int | None = None, group_bytes: float = 0.0) -> Traffic:
    """Output-stationary tiled GEMM C = A·B (A m×k, B k×n): reads ``m·k·Tn`` of A and
    ``k·n·Tm`` of B, writes ``m·n`` of C (elements), FLOPs ``2·m·n·k``. ``tile_k`` does not
    change the A/B/C totals (every k-step of every output tile is loaded once) but is
    validated.

    Weight-quantized B (docs/schedules.md, ``gemm_tiled``): B's elements are
    ``b_dtype_bytes`` each (default ``dtype_bytes``); with ``group_size`` g, every output tile
    also loads each of the ``ceil(k/g)`` groups' metadata (scale + zero point,
    ``group_bytes`` per group per column) of its columns once: tensor ``"B_scales"`` reads
    ``n·Tm·ceil(k/g)`` entries. ``tile_k`` still does not change the totals."""
    m, n, k = _pos_int("m", m), _pos_int("n", n), _pos_int("k", k)
    tm, tn = _pos_int("tile_m", tile_m), _pos_int("tile_n", tile_n)
    _pos_int("tile_k", tile_k)
    if dtype_bytes not in _ELEMENT_SIZES:
        raise InputError(f'"dtype_bytes" must be one of {_ELEMENT_SIZES}, got {dtype_bytes!r}')
    be = dtype_bytes if b_dtype_bytes is None else b_dtype_bytes
    if be not in _ELEMENT_SIZES:
        raise InputError(f'"b_dtype_bytes" must be one of {_ELEMENT_SIZES}, got {be!r}')
    b = _Builder()
    tiles_m = -(-m // tm)
    b.add("A", dtype_bytes, read=m * k * (-(-n // tn)))
    b.add("B", be, read=k * n * tiles_m)
    if group_size is not None:
        if isinstance(group_bytes, bool) or not isinstance(group_bytes, (int, float)) \
                or not group_bytes > 0:
            raise InputError(f'"group_bytes" must be a number > 0, got {group_bytes!r}')
        groups = -(-k // _pos_int("group_size", group_size))
        b.add("B_scales", group_bytes, read=n * tiles_m * groups)
    b.add("C", dtype_bytes, write=m * n)
    return b.build(1, 2 * m * n * k, 0)
