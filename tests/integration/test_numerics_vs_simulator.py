"""Two independent executions of one schedule, one answer: the bytes the numba numerics count
at the SRAM boundary while computing real numbers equal the bytes the discrete-event simulator
counts (``l2.read_bytes`` / ``l2.write_bytes``) for the same configuration, for every attention
schedule and every mask. The numerics also compute the right answer (checked in
tests/numerics); here they must agree with the simulator to the byte."""
from __future__ import annotations

import numpy as np
import pytest

import memsim
from memsim.numerics import reference_attention, relative_error, run_attention

SHAPES = [
    # (batch, heads, kv_heads, seq_q, seq_k, head_dim)
    (1, 2, 2, 77, 77, 32),
    (2, 4, 2, 130, 130, 64),     # GQA, not a block multiple
    (1, 2, 1, 1, 300, 64),       # decode-like, MQA
]
MASKS = [
    {},
    {"causal": True},
    {"causal": True, "window": 40},
    {"window": 25},
    {"block_sparse": {"density": 0.5, "block": 32, "seed": 3}},
]
SCHEDULES = [
    {"kind": "standard", "block_q": 32, "block_k": 48, "intermediate_dtype": "fp32"},
    {"kind": "flash1", "block_q": 32, "block_k": 40},
    {"kind": "flash2", "block_q": 64, "block_k": 32},
    {"kind": "square_tiling", "block": 24},
    {"kind": "chunked", "block_q": 48, "block_k": 64},
    {"kind": "flash_decoding", "block_k": 32, "splits": 3},
]


def _config(shape, mask, schedule):
    batch, heads, kv_heads, seq_q, seq_k, d = shape
    workload = {"kind": "attention", "batch": batch, "heads": heads, "kv_heads": kv_heads,
                "seq_q": seq_q, "seq_k": seq_k, "head_dim": d, "dtype": "bf16", **mask}
    return {"hardware": "h100-sxm", "workload": workload, "schedule": dict(schedule),
            "simulation": {"granularity": "block"}}


def _numerics(shape, mask, resolved):
    batch, heads, kv_heads, seq_q, seq_k, d = shape
    rng = np.random.default_rng(sum(shape))
    q = rng.standard_normal((batch, heads, seq_q, d)).astype(np.float32)
    k = rng.standard_normal((batch, kv_heads, seq_k, d)).astype(np.float32)
    v = rng.standard_normal((batch, kv_heads, seq_k, d)).astype(np.float32)
    options = {key: resolved[key] for key in ("block_q", "block_k", "block", "splits")
               if resolved.get(key) is not None}
    sparse = mask.get("block_sparse")
    kwargs = dict(causal=mask.get("causal", False), window=mask.get("window"), sparse=sparse,
                  dtype_bytes=2)
    if resolved["kind"] in ("standard", "square_tiling"):
        kwargs["intermediate_bytes"] = 4 if resolved.get("intermediate_dtype") == "fp32" else 2
    out = run_attention(resolved["kind"], q, k, v, **options, **kwargs)
    ref = reference_attention(q, k, v, causal=kwargs["causal"], window=kwargs["window"],
                              sparse=sparse)
    return out, ref


# flash_decoding is a decode schedule: it runs on the seq_q = 1 shape only
CASES = [pytest.param(shape, mask, schedule,
                      id=f"{'x'.join(map(str, shape))}-{'-'.join(mask) or 'dense'}-"
                         f"{schedule['kind']}")
         for shape in SHAPES for mask in MASKS for schedule in SCHEDULES
         if schedule["kind"] != "flash_decoding" or shape[3] == 1]


@pytest.mark.parametrize("shape,mask,schedule", CASES)
def test_numerics_bytes_equal_simulated_bytes(shape, mask, schedule):
    result = memsim.simulate(_config(shape, mask, schedule))
    out, ref = _numerics(shape, mask, dict(result.schedule))
    assert out.read_bytes == result.levels["l2"].read_bytes
    assert out.write_bytes == result.levels["l2"].write_bytes
    ref_out = ref[0] if isinstance(ref, tuple) else ref
    assert relative_error(out.output, ref_out) <= 1e-5      # float32 inputs, no rounding
