"""FA2's local-memory spills, measured (memsim/validation/data/h100/local_memory.json).

The SDPA flash kernels use 255 registers per thread and spill: their L2 writes are 7.7-29x
their output. memsim does not model spills (docs/validation.md, "causal FA2 HBM reads"); these
tests pin what the data says, so that a model of them has a measured target.
"""
from __future__ import annotations

import json

import pytest

from memsim.validation.data import DATA_DIR, load_gpu_cases
from memsim.validation.mapping import map_case
from memsim.workloads.masks import active_tiles


@pytest.fixture(scope="module")
def doc():
    with open(DATA_DIR / "h100" / "local_memory.json") as f:
        d = json.load(f)
    assert d["schema"] == "memsim.validation.local_memory/1"
    return d


def _tiles(case) -> int:
    """CTA-iterations (active query-block x key-block tiles) of a mapped attention case."""
    p, s = case.params, map_case(case).config["schedule"]
    n = p["seq_q"]
    per_head = active_tiles(n, p["seq_k"], s["block_q"], s["block_k"], bool(p["causal"]),
                            None, None).sum()
    return int(per_head) * p["batch"] * p["heads"]


def test_l2_writes_are_the_lsu_stores(doc):
    # every FA2 and cutlass byte written to L2 is a local (spill) or global store; cuDNN
    # stores its output by TMA, outside the LSU counters
    for cid, r in doc["cases"].items():
        lsu = r["local_store_bytes"] + r["global_store_bytes"]
        if cid.startswith("attn_cudnn"):
            assert lsu == 0 and r["l2_write_bytes"] > 0
        else:
            assert r["l2_write_bytes"] == lsu, cid


def test_fa2_spills_a_fixed_amount_per_tile_and_the_others_none(doc):
    ds = load_gpu_cases("h100")
    per_tile = {64: [], 128: []}
    for cid, r in doc["cases"].items():
        case = ds.case(cid)
        if not cid.startswith("attn_flash"):
            assert r["local_store_bytes"] == r["local_load_bytes"] == 0, cid
            continue
        per_tile[case.params["head_dim"]].append(r["local_store_bytes"] / _tiles(case))
    # measured: 3424-3481 B per 128x128 tile at d=64, 7224-7294 B per 128x64 tile at d=128
    for d, values in per_tile.items():
        assert len(values) >= 2
        assert max(values) / min(values) < 1.02, (d, values)
    assert 3300 < min(per_tile[64]) and max(per_tile[128]) < 7400
    # the spills dwarf the output: n=8192, d=128 stores 28x O (134 MB) to L2
    r = doc["cases"]["attn_flash_b4h16n8192d128"]
    assert r["local_store_bytes"] > 25 * 4 * 16 * 8192 * 128 * 2
