"""The numerics count their own SRAM-boundary traffic while they run; those counts must equal
the independent closed forms (memsim.bounds.closed_forms) element for element, per tensor."""
import zlib

import numpy as np
import pytest

from memsim.bounds.closed_forms import attention_traffic
from memsim.numerics import SCHEDULES, run_attention
from memsim.numerics._tiles import tile_activity
from memsim.workloads import masks

# Shapes deliberately not multiples of the blocks; Nq != Nk exercises bottom-right alignment.
MASKS = {
    "none": {},
    "causal": {"causal": True},
    "causal_window": {"causal": True, "window": 9},
    "window": {"window": 7},
    "sparse": {"sparse": {"density": 0.3, "block": 8, "seed": 3}},
    "causal_sparse": {"causal": True, "sparse": {"density": 0.5, "block": 12, "seed": 1}},
}
BLOCKS = {"block_q": 8, "block_k": 12, "block": 7, "splits": 3}


def _inputs(seed, b=2, h=4, hkv=2, nq=29, nk=41, d=10, dtype=np.float64):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((b, h, nq, d)).astype(dtype),
            rng.standard_normal((b, hkv, nk, d)).astype(dtype),
            rng.standard_normal((b, hkv, nk, d)).astype(dtype))


def _closed(schedule, q, k, mask, **kw):
    b, h, nq, d = q.shape
    return attention_traffic(schedule, batch=b, heads=h, kv_heads=k.shape[1], seq_q=nq,
                             seq_k=k.shape[2], head_dim=d, **BLOCKS, **mask, **kw)


@pytest.mark.parametrize("mask_name", list(MASKS))
@pytest.mark.parametrize("schedule", SCHEDULES)
def test_counts_equal_closed_forms_per_tensor(schedule, mask_name):
    mask = MASKS[mask_name]
    q, k, v = _inputs(zlib.crc32(f"{schedule}/{mask_name}".encode()))
    res = run_attention(schedule, q, k, v, **BLOCKS, **mask)
    want = _closed(schedule, q, k, mask, dtype_bytes=8)
    got = {name: (res.read_elements[name], res.write_elements[name])
           for name in res.read_elements if res.read_elements[name] or res.write_elements[name]}
    expected = {name: (t.read_elements, t.write_elements) for name, t in want.tensors.items()
                if t.read_elements or t.write_elements}
    assert got == expected
    assert (res.read_bytes, res.write_bytes) == (want.read_bytes, want.write_bytes)


@pytest.mark.parametrize("schedule", ["standard", "square_tiling", "flash1", "chunked"])
def test_bytes_follow_dtype_and_intermediate_sizes(schedule):
    # bf16 workload (2 B), fp32 intermediates (4 B), statistics always 4 B.
    q, k, v = _inputs(7, nq=23, nk=23)
    mask = {"causal": True}
    res = run_attention(schedule, q, k, v, **BLOCKS, **mask, dtype_round="bf16",
                        intermediate_bytes=4)
    want = _closed(schedule, q, k, mask, dtype_bytes=2, intermediate_bytes=4)
    assert (res.read_bytes, res.write_bytes) == (want.read_bytes, want.write_bytes)
    # Relation: halving the workload dtype halves exactly the Q/K/V/O bytes.
    res4 = run_attention(schedule, q, k, v, **BLOCKS, **mask, dtype_bytes=4,
                         intermediate_bytes=4)
    qkvo = sum(res.read_elements[n] + res.write_elements[n] for n in "QKVO")
    assert (res4.read_bytes + res4.write_bytes) - (res.read_bytes + res.write_bytes) == 2 * qkvo


def test_gqa_counts_per_query_head():
    # Traffic at the SRAM boundary is per query head: MQA moves as much K as MHA.
    q, k, v = _inputs(11, h=4, hkv=1)
    mqa = run_attention("flash2", q, k, v, block_q=8, block_k=12)
    k4, v4 = (np.repeat(x, 4, axis=1) for x in (k, v))
    mha = run_attention("flash2", q, k4, v4, block_q=8, block_k=12)
    assert mqa.read_elements == mha.read_elements
    np.testing.assert_array_equal(mqa.output, mha.output)


def test_flash_decoding_trailing_empty_split_moves_nothing():
    # Tc = 5 key blocks in 4 splits of ceil(5/4) = 2 blocks: split 3 is empty.
    q, k, v = _inputs(5, b=1, h=1, hkv=1, nq=1, nk=60)
    res = run_attention("flash_decoding", q, k, v, block_k=12, splits=4)
    assert res.write_elements["L_partial"] == 3
    assert res.read_elements["Q"] == 3 * 10


@pytest.mark.parametrize("mask_name", ["causal_window", "window", "sparse", "causal_sparse"])
@pytest.mark.parametrize("nq,nk,br,bc", [(29, 41, 8, 12), (50, 17, 16, 5), (33, 33, 33, 1)])
def test_tile_activity_matches_masks_module(mask_name, nq, nk, br, bc):
    mask = MASKS[mask_name]
    sp = masks.as_block_sparse(mask.get("sparse"))
    layout = (np.ones((1, 1), bool) if sp is None
              else masks.block_sparse_layout(nq, nk, sp.block, sp.density, sp.seed))
    sblock = max(nq, nk) + 1 if sp is None else sp.block
    got = tile_activity(nq, nk, br, bc, mask.get("causal", False), mask.get("window") or 0,
                        layout, sblock)
    want = masks.active_tiles(nq, nk, br, bc, **mask)
    np.testing.assert_array_equal(got, want)
