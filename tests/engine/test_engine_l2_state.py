"""``simulation.l2_dirty_at_start``: L2 full of other data at the start, part of it dirty (what
a benchmark's L2 flush or a previous workload leaves). Evicting the dirty part costs HBM
write-back traffic and time; without the option L2 starts empty (the default, unchanged)."""
from __future__ import annotations

import pytest

from memsim.config import load_run_config
from memsim.engine import DIRTY_TENSOR, simulate_program
from memsim.errors import InputError
from memsim.hardware import load_hardware
from memsim.schedulers import get_schedule
from memsim.simulate import simulate
from memsim.workloads import AttentionWorkload, GemmWorkload

HW = load_hardware("h100-sxm")
CAP = HW.memory("l2").lru_capacity_bytes
CHUNK = max(128, round(CAP / 512 / 128) * 128)   # the granularity of the pre-existing data
N_CHUNKS = -(-CAP // CHUNK)                      # (trafficpass.run_pass)


def _gemv(n=16384, k=8192, granularity="block", dirty=None):
    """A read-only weight stream of n*k*2 bytes (a decode GEMV), HBM bound."""
    w = GemmWorkload(8, n, k, "bf16")
    s = get_schedule("gemm_tiled").from_dict({"tile_m": 8, "tile_n": 64, "tile_k": 64,
                                              "stages": 8}, w, HW)
    return simulate_program(HW, s.kernels(), granularity=granularity, l2_dirty_bytes=dirty)


def test_clean_full_l2_is_the_same_as_an_empty_one():
    cold = _gemv()
    clean = _gemv(dirty=0.0)
    assert clean.levels == cold.levels and clean.time_s == cold.time_s
    assert clean.dirty_writeback == 0.0 and clean.tensors[DIRTY_TENSOR]["hbm_write"] == 0
    assert DIRTY_TENSOR not in cold.tensors


@pytest.mark.parametrize("dirty_chunks", [N_CHUNKS, 256, 100])
def test_a_stream_larger_than_l2_writes_back_all_the_dirty_data(dirty_chunks):
    d = min(dirty_chunks * CHUNK, CAP)
    cold, er = _gemv(), _gemv(dirty=d)
    assert er.dirty_writeback == pytest.approx(d, rel=1e-12)
    assert er.tensors[DIRTY_TENSOR]["hbm_write"] == round(d)
    # the program's own traffic does not change; the write-back is added to HBM writes
    assert er.levels["hbm"].read_bytes == cold.levels["hbm"].read_bytes
    assert er.levels["l2"] == cold.levels["l2"]
    assert er.levels["hbm"].write_bytes == pytest.approx(cold.levels["hbm"].write_bytes + d,
                                                         abs=1)
    # HBM bound: the write-back shares the HBM bus, so the kernel takes about d / BW longer
    bw = HW.memory("hbm").write_bandwidth
    assert er.time_s - cold.time_s == pytest.approx(d / bw, rel=0.05)


def test_a_small_footprint_evicts_its_share_of_the_dirty_data():
    # 33.6 MB of weights evict 33.6 MB of the pre-existing data, half of which is dirty
    er = _gemv(n=4096, k=4096, dirty=CAP / 2)
    footprint = 4096 * 4096 * 2
    assert er.dirty_writeback == pytest.approx(footprint / 2, abs=CHUNK)


def test_tile_and_block_agree_with_a_dirty_start():
    w = AttentionWorkload(2, 8, 8, 1, 8192, 128, False, None, None, "bf16")
    s = get_schedule("flash_decoding").from_dict({"block_k": 128, "splits": 4}, w, HW)
    tile = simulate_program(HW, s.kernels(), granularity="tile", l2_dirty_bytes=CAP / 2)
    block = simulate_program(HW, s.kernels(), granularity="block", l2_dirty_bytes=CAP / 2)
    assert tile.levels == block.levels and tile.dirty_writeback == block.dirty_writeback > 0
    assert block.time_s == pytest.approx(tile.time_s, rel=1e-9)


def _config(**sim):
    return {"hardware": "h100-sxm",
            "workload": {"kind": "gemm", "m": 8, "n": 8192, "k": 8192, "dtype": "bf16"},
            "schedule": {"kind": "gemm_tiled", "tile_m": 8, "tile_n": 64, "tile_k": 64},
            "simulation": {"granularity": "block", **sim}}


def test_run_config_key_reaches_the_result():
    res = simulate(load_run_config(_config(l2_dirty_at_start="20 MB")))
    assert res.simulation["l2_dirty_at_start"] == 20e6
    wb = res.simulation["l2_dirty_writeback"]
    assert wb == pytest.approx(20e6, abs=CHUNK)
    cold = simulate(load_run_config(_config()))
    assert res.time_s > cold.time_s and "l2_dirty_at_start" not in cold.simulation
    assert res.levels["hbm"].write_bytes == pytest.approx(cold.levels["hbm"].write_bytes + wb,
                                                          abs=1)


@pytest.mark.parametrize("value,msg", [(-1, "l2_dirty_at_start"), ("60 MB", "L2 capacity"),
                                       ("lots", "l2_dirty_at_start")])
def test_bad_values_name_the_field(value, msg):
    with pytest.raises(InputError, match=msg):
        load_run_config(_config(l2_dirty_at_start=value))
