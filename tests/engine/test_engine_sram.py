"""SRAM counters (DESIGN.md result contract, docs/schedules.md "Engine model"):
``sram.read_bytes`` = operand bytes the compute reads from SRAM + bytes drained into L2;
``sram.write_bytes`` = bytes filled from L2 + result bytes compute writes before the store.
Expected values are worked out by hand from those rules (e = 2 B, bf16)."""
import pytest

from memsim.engine import simulate_program
from memsim.hardware import load_hardware
from memsim.schedulers import get_schedule
from memsim.workloads import AttentionWorkload, GemmWorkload

HW = load_hardware("h100-sxm")


def levels(kind, w, opts, granularity="block"):
    sched = get_schedule(kind).from_dict(opts, w, HW)
    return simulate_program(HW, sched.kernels(), granularity=granularity)


@pytest.mark.parametrize("granularity", ["tile", "block"])
def test_flash2_sram_counts_q_k_v_per_tile(granularity):
    # 2 query heads, Nq=300 (Br 128,128,44), Nk=200 (Bc 64,64,64,8), d=64 -> d·e = 128 B
    w = AttentionWorkload(1, 2, 1, 300, 200, 64, False, None, None, "bf16")
    er = levels("flash2", w, {"block_q": 128, "block_k": 64}, granularity)
    fill = 2 * (300 * 128 + 3 * 2 * 200 * 128)          # Q once, K and V per row block
    drain = 2 * (300 * 128 + 300 * 4)                   # O (bf16) and L (fp32)
    operands = 2 * (4 * 300 + 2 * 3 * 200) * 128        # every tile: Q_i, K_j, V_j
    assert er.levels["l2"].read_bytes == fill == 384_000
    assert er.levels["sram"].read_bytes == operands + drain == 693_600
    assert er.levels["sram"].write_bytes == fill + drain == 463_200
    assert er.tensors["K"]["sram_read"] == 2 * 3 * 200 * 128
    assert er.tensors["O"]["sram_read"] == 2 * 300 * 128       # drained only


def test_flash1_sram_counts_running_outputs():
    # Nq = Nk = 100, d = 32 (d·e = 64 B), Br 50,50, Bc 40,40,20 (Tc = 3)
    w = AttentionWorkload(1, 1, 1, 100, 100, 32, False, None, None, "bf16")
    er = levels("flash1", w, {"block_q": 50, "block_k": 40})
    per_pass = 100 * 64 + 2 * 100 * 4                    # O, l, m of all rows
    fill = 2 * 100 * 64 + 3 * (100 * 64 + per_pass)     # K, V once; Q, O, l, m per key block
    drain = per_pass + 3 * per_pass                      # initialisation + one per key block
    operands = 3 * (100 * 64 + per_pass) + 2 * 2 * 100 * 64   # Q,O,l,m per tile; K,V per row
    assert (fill, drain, operands) == (53_600, 28_800, 66_400)
    assert er.levels["l2"].read_bytes == fill and er.levels["l2"].write_bytes == drain
    assert er.levels["sram"].read_bytes == operands + drain
    assert er.levels["sram"].write_bytes == fill + drain


def test_standard_sram_counts_s_and_p_through_sram():
    # Nq = Nk = 100, d = 32, 64x64 blocks (Br, Bc = 64, 36), S and P in bf16
    w = AttentionWorkload(1, 1, 1, 100, 100, 32, False, None, None, "bf16")
    er = levels("standard", w, {"block_q": 64, "block_k": 64})
    qk = (2 * 100 + 2 * 100) * 64            # Q_i and K_j of each of the 4 tiles
    softmax = 100 * 100 * 2                  # S
    pv = 100 * 100 * 2 + 2 * 100 * 64        # P, and V_j per row block
    drain = 2 * 100 * 100 * 2 + 100 * 64     # S, P, O
    assert er.levels["l2"].read_bytes == qk + softmax + pv == 78_400
    assert er.levels["sram"].read_bytes == qk + softmax + pv + drain == 124_800
    assert er.levels["sram"].write_bytes == qk + softmax + pv + drain


def test_gemm_sram_counts_a_and_b_tiles_per_k_step():
    # m=100 (64, 36), n=300 (128, 128, 44), k=200 (64, 64, 64, 8)
    er = levels("gemm_tiled", GemmWorkload(100, 300, 200, "bf16"),
                {"tile_m": 64, "tile_n": 128, "tile_k": 64})
    operands = (100 * 200 * 3 + 200 * 300 * 2) * 2      # m·k·Tn + k·n·Tm elements
    drain = 100 * 300 * 2
    assert er.levels["sram"].read_bytes == operands + drain == 420_000
    assert er.levels["sram"].write_bytes == operands + drain   # here fills = operands
    assert er.levels["l2"].read_bytes == operands


def test_sram_reads_exceed_l2_reads_for_flash2():
    # Q_i is read from SRAM for every tile but loaded once: sram reads > l2 reads
    w = AttentionWorkload(1, 4, 4, 2048, 2048, 128, False, None, None, "bf16")
    er = levels("flash2", w, {})
    lv = er.levels
    assert lv["sram"].read_bytes > 1.4 * lv["l2"].read_bytes
    assert lv["sram"].write_bytes == lv["l2"].read_bytes + lv["l2"].write_bytes
