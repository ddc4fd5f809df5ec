"""check_numerics: the library side of `memsim run --check-numerics`, and input errors."""
import numpy as np
import pytest

from memsim.bounds.closed_forms import attention_traffic
from memsim.errors import InputError
from memsim.numerics import run_attention
from memsim.numerics.check import check_numerics

WORKLOAD = {"kind": "attention", "batch": 2, "heads": 4, "kv_heads": 2, "seq_q": 50,
            "seq_k": 70, "head_dim": 16, "causal": True, "dtype": "fp32"}


def test_small_workload_runs_as_configured():
    out = check_numerics(WORKLOAD, {"kind": "flash2", "block_q": 16, "block_k": 32})
    assert not out["scaled_down"]
    assert out["shape"] == {k: WORKLOAD[k] for k in out["shape"]}
    assert out["passed"] and out["rel_error"] <= 1e-5 and out["lse_rel_error"] <= 1e-5
    want = attention_traffic("flash2", batch=2, heads=4, kv_heads=2, seq_q=50, seq_k=70,
                             head_dim=16, dtype_bytes=4, block_q=16, block_k=32, causal=True)
    assert (out["read_bytes"], out["write_bytes"]) == (want.read_bytes, want.write_bytes)


def test_large_workload_is_scaled_down_and_says_so():
    w = dict(WORKLOAD, batch=4, heads=32, kv_heads=8, seq_q=4096, seq_k=4096, dtype="bf16",
             block_sparse={"density": 0.5, "block": 64, "seed": 2})
    out = check_numerics(w, {"kind": "chunked", "block_q": 256, "block_k": 512},
                         max_elements=1 << 18)
    assert out["scaled_down"]
    s = out["shape"]
    assert (s["batch"], s["heads"], s["kv_heads"]) == (1, 4, 1)  # one GQA group kept
    assert s["heads"] * s["seq_q"] * s["seq_k"] <= 1 << 18
    assert s["seq_q"] == s["seq_k"] == 256
    assert out["rounding"] == "bf16" and 1e-4 < out["rel_error"] <= out["tolerance"] == 1e-2
    assert out["passed"]


def test_intermediate_dtype_is_rounded_and_sized():
    w = dict(WORKLOAD, dtype="fp32")
    sched = {"kind": "standard", "block_q": 16, "block_k": 16}
    plain = check_numerics(w, sched)
    rounded = check_numerics(w, dict(sched, intermediate_dtype="bf16"))
    assert plain["rel_error"] <= 1e-5 < rounded["rel_error"]
    s_elements = 2 * 4 * 50 * 70  # S and P are each written once and read once
    assert plain["read_bytes"] - rounded["read_bytes"] == 2 * s_elements * (4 - 2)


@pytest.mark.parametrize("workload,schedule,match", [
    (dict(WORKLOAD, kind="gemm"), {"kind": "flash2"}, "workload.kind"),
    (dict(WORKLOAD, heads=3), {"kind": "flash2"}, "kv_heads"),
    (dict(WORKLOAD, colour=1), {"kind": "flash2"}, "colour"),
    (WORKLOAD, {"kind": "flash3"}, '"schedule" must be one of'),
    (WORKLOAD, {"block_q": 4}, "kind"),
    (WORKLOAD, {"kind": "flash2", "block_q": 0}, '"block_q" must be an integer >= 1'),
])
def test_bad_input_names_the_field(workload, schedule, match):
    with pytest.raises(InputError, match=match):
        check_numerics(workload, schedule)


def test_run_attention_rejects_bad_shapes():
    q = np.zeros((1, 3, 4, 8))
    kv = np.zeros((1, 2, 4, 8))
    with pytest.raises(InputError, match='"heads" \\(3\\) must be a multiple of "kv_heads"'):
        run_attention("flash2", q, kv, kv)
    with pytest.raises(InputError, match='"q" must have shape'):
        run_attention("flash2", q[0], kv, kv)
    with pytest.raises(InputError, match='"window" must be an integer >= 1, got 0'):
        run_attention("flash2", q[:, :2], kv, kv, window=0)
