"""Engine speed: flash2 forward on h100-sxm, batch x heads = 32, d = 128, bf16.

Prints the tile-level wall time and events/s at N = 16384 (target <= 10 s) and the block-level
(coarse) wall time at N = 131072 (target <= 2 s), each warm (numba code loaded by a first small
run) and on one core. Run: ``python benchmarks/engine_bench.py``.
"""
from __future__ import annotations

import time

from memsim.engine import simulate_program
from memsim.hardware import load_hardware
from memsim.schedulers import get_schedule
from memsim.workloads import AttentionWorkload


def bench(hw, n: int, granularity: str):
    w = AttentionWorkload(1, 32, 32, n, n, 128, False, None, None, "bf16")
    t0 = time.perf_counter()
    kernels = get_schedule("flash2").from_dict({}, w, hw).kernels()
    er = simulate_program(hw, kernels, granularity=granularity)
    wall = time.perf_counter() - t0
    return er, wall


def main() -> None:
    hw = load_hardware("h100-sxm")
    t0 = time.perf_counter()
    bench(hw, 256, "tile")                      # load the numba traffic pass (cache=True)
    print(f"warm-up (numba load/compile): {time.perf_counter() - t0:.2f} s")
    er, wall = bench(hw, 16384, "tile")
    print(f"flash2 N=16384 bh=32 d=128 tile level: wall {wall:.2f} s, {er.events:,} simpy "
          f"events, {er.events / wall:,.0f} events/s, simulated {er.time_s * 1e3:.3f} ms, "
          f"HBM read {er.levels['hbm'].read_bytes / 1e9:.3f} GB, "
          f"L2 read {er.levels['l2'].read_bytes / 1e9:.2f} GB")
    er_b, wall_b = bench(hw, 16384, "block")
    print(f"flash2 N=16384 block level: wall {wall_b:.2f} s, simulated "
          f"{er_b.time_s * 1e3:.3f} ms ({er_b.time_s / er.time_s - 1:+.2%} vs tile), "
          f"bytes equal: {er_b.levels == er.levels}")
    er, wall = bench(hw, 131072, "block")
    print(f"flash2 N=131072 bh=32 d=128 block level: wall {wall:.2f} s, {er.events:,} events, "
          f"simulated {er.time_s * 1e3:.2f} ms, HBM read {er.levels['hbm'].read_bytes / 1e9:.2f} "
          f"GB, L2 read {er.levels['l2'].read_bytes / 1e9:.1f} GB")


if __name__ == "__main__":
    main()
