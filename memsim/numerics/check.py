"""``check_numerics``: run a configured attention schedule on seeded random inputs and compare
it with the float64 reference (the library side of ``memsim run --check-numerics``)."""
from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Mapping

import numpy as np

from memsim.dtypes import dtype_bytes
from memsim.errors import InputError
from memsim.workloads.attention import AttentionWorkload

from .api import reference_attention, relative_error, run_attention

__all__ = ["check_numerics", "TOLERANCES", "DEFAULT_MAX_ELEMENTS"]

#: Relative-error tolerance ||out - ref|| / ||ref|| per workload dtype, against the float64
#: reference on the unrounded inputs (fp16/bf16 include the rounding of inputs and output).
TOLERANCES = {"fp32": 1e-5, "bf16": 1e-2, "fp16": 2e-3}
#: Largest batch * heads * seq_q * seq_k run as configured (the reference stores every score).
DEFAULT_MAX_ELEMENTS = 1 << 22
_ROUNDED = {"bf16": "bf16", "fp16": "fp16"}
_SCHEDULE_KEYS = ("block_q", "block_k", "block", "splits")


def _workload(workload: Any) -> AttentionWorkload:
    if isinstance(workload, AttentionWorkload):
        return workload
    if not isinstance(workload, Mapping):
        raise InputError(f'"workload" must be a mapping, got {type(workload).__name__}')
    w = dict(workload)
    kind = w.pop("kind", "attention")
    if kind != "attention":
        raise InputError(f'"workload.kind" must be attention for --check-numerics, got {kind!r}')
    sparse = w.pop("block_sparse", None)
    w.setdefault("kv_heads", w.get("heads"))
    w.setdefault("seq_k", w.get("seq_q"))
    try:
        return AttentionWorkload(sparse=sparse, **w)
    except TypeError as exc:  # missing or unknown keys
        raise InputError(f'"workload": {exc}') from None


def _scaled(w: AttentionWorkload, max_elements: int) -> AttentionWorkload:
    """Shrink until batch * heads * seq_q * seq_k <= max_elements: batch to 1, heads to one
    GQA group (kv_heads 1), then halve both sequence lengths (masks and blocks unchanged)."""
    def size(x):
        return x.batch * x.heads * x.seq_q * x.seq_k

    if size(w) <= max_elements:
        return w
    w = replace(w, batch=1, heads=w.group_size, kv_heads=1)
    while size(w) > max_elements and (w.seq_q > 1 or w.seq_k > 1):
        w = replace(w, seq_q=max(1, -(-w.seq_q // 2)), seq_k=max(1, -(-w.seq_k // 2)))
    return w


def check_numerics(workload: Any, schedule: Mapping[str, Any], *,
                   max_elements: int = DEFAULT_MAX_ELEMENTS, seed: int = 0) -> dict:
    """Run ``schedule`` (mapping with ``kind`` and optional block_q, block_k, block, splits,
    intermediate_dtype) on standard-normal inputs (``numpy.random.default_rng(seed)``) of the
    ``workload`` shape (an ``AttentionWorkload`` or its mapping), or of a stated scaled-down
    shape when ``batch * heads * seq_q * seq_k > max_elements``.

    Computes in float32; bf16/fp16 workloads round inputs and output to that type. Returns a
    JSON-ready dict: ``rel_error`` (output vs the float64 reference on the unrounded inputs),
    ``lse_rel_error`` (rows with a visible key; None for ``standard``), ``tolerance`` and
    ``passed``, the shape that ran and ``scaled_down``, and the run's SRAM ``read_bytes`` /
    ``write_bytes`` at that shape."""
    w = _workload(workload)
    if not isinstance(schedule, Mapping) or "kind" not in schedule:
        raise InputError('"schedule" must be a mapping with a "kind"')
    if isinstance(max_elements, bool) or not isinstance(max_elements, int) or max_elements < 1:
        raise InputError(f'"max_elements" must be an integer >= 1, got {max_elements!r}')
    run = _scaled(w, max_elements)
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((run.batch, run.heads, run.seq_q, run.head_dim), dtype=np.float32)
    k = rng.standard_normal((run.batch, run.kv_heads, run.seq_k, run.head_dim), dtype=np.float32)
    v = rng.standard_normal((run.batch, run.kv_heads, run.seq_k, run.head_dim), dtype=np.float32)
    idt = schedule.get("intermediate_dtype")
    kwargs = {key: schedule[key] for key in _SCHEDULE_KEYS if schedule.get(key) is not None}
    res = run_attention(
        schedule["kind"], q, k, v, causal=run.causal, window=run.window, sparse=run.sparse,
        dtype_round=_ROUNDED.get(run.dtype), dtype_bytes=run.dtype_bytes,
        intermediate_round=idt if idt in ("bf16", "fp16", "fp32") else None,
        intermediate_bytes=None if idt is None else dtype_bytes(idt),
        **kwargs)
    mask = dict(causal=run.causal, window=run.window, sparse=run.sparse)
    ref, ref_lse = reference_attention(q, k, v, **mask)
    err = relative_error(res.output, ref)
    lse_err = None
    if res.lse is not None:
        rows = np.isfinite(ref_lse)
        same_empty = bool(np.array_equal(np.isneginf(res.lse), ~rows))
        lse_err = relative_error(res.lse[rows], ref_lse[rows]) if same_empty else math.inf
    tol = TOLERANCES.get(run.dtype, TOLERANCES["fp32"])
    return {
        "schedule": schedule["kind"],
        "params": dict(res.params),
        "shape": {"batch": run.batch, "heads": run.heads, "kv_heads": run.kv_heads,
                  "seq_q": run.seq_q, "seq_k": run.seq_k, "head_dim": run.head_dim},
        "scaled_down": run is not w,
        "dtype": run.dtype,
        "rounding": _ROUNDED.get(run.dtype, "none (computed in float32)"),
        "seed": seed,
        "rel_error": err,
        "lse_rel_error": lse_err,
        "tolerance": tol,
        "passed": bool(err <= tol and (lse_err is None or lse_err <= tol)),
        "read_bytes": res.read_bytes,
        "write_bytes": res.write_bytes,
    }
