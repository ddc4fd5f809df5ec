"""Engine speed: flash2 forward on h100-sxm, batch x heads = 32, d = 128, bf16.

Prints the tile-level wall time and events/s at N = 16384 (target <= 10 s) and the block-level
(coarse) wall time at N = 131072 (target <= 2 s), each warm (numba code loaded by a first small
run) and on one core; then the block-vs-tile simulated-time error of every schedule over
several shapes (target: within 2 %; bytes must be equal). Run:
``python benchmarks/engine_bench.py`` (``--no-errors`` skips the error table).
"""
from __future__ import annotations

import time

from memsim.engine import simulate_program
from memsim.hardware import load_hardware
from memsim.schedulers import get_schedule
from memsim.workloads import AttentionWorkload, GemmWorkload


def _attn(b=1, h=8, kvh=None, n=1024, d=64, causal=False, nq=None):
    return AttentionWorkload(b, h, kvh or h, nq or n, n, d, causal, None, None, "bf16")


# shapes per schedule for the block-vs-tile time error table
ERROR_CASES = {
    "flash2": [_attn(b=2, h=16, n=2048, d=128), _attn(b=2, h=16, kvh=4, n=2048, causal=True),
               _attn(h=64, n=1024, d=128), _attn(h=3, n=700)],
    "flash1": [_attn(b=2, h=16, n=2048), _attn(h=8, n=1000, d=128), _attn(h=200, n=512)],
    "standard": [_attn(n=1024), _attn(h=4, n=2048, d=128), _attn(h=32, n=512)],
    "square_tiling": [_attn(h=4, n=1024), _attn(h=16, n=512, d=128)],
    "chunked": [_attn(h=8, n=2048), _attn(h=32, n=4096, d=128)],
    "flash_decoding": [_attn(b=8, h=16, kvh=2, nq=1, n=16384, d=128),
                       _attn(h=32, kvh=8, nq=1, n=32768, d=128),
                       _attn(b=4, h=8, nq=4, n=8192, causal=True)],
    "gemm_tiled": [GemmWorkload(2048, 2048, 2048, "bf16"), GemmWorkload(1000, 3000, 500, "bf16"),
                   GemmWorkload(4096, 4096, 4096, "bf16"), GemmWorkload(128, 4096, 4096, "bf16"),
                   GemmWorkload(16, 8192, 8192, "bf16")],
}


def errors(hw) -> None:
    """Block vs tile simulated time, per schedule: max |error| over its shapes."""
    print("block vs tile simulated time (bytes equal in every case):")
    for kind, cases in ERROR_CASES.items():
        errs = []
        for w in cases:
            ks = get_schedule(kind).from_dict({}, w, hw).kernels()
            t = simulate_program(hw, ks, granularity="tile")
            b = simulate_program(hw, ks, granularity="block")
            assert b.levels == t.levels, kind
            errs.append(b.time_s / t.time_s - 1)
        worst = max(errs, key=abs)
        print(f"  {kind:15s} max |err| {abs(worst):6.2%}  ({', '.join(f'{e:+.2%}' for e in errs)})")


def bench(hw, n: int, granularity: str):
    w = AttentionWorkload(1, 32, 32, n, n, 128, False, None, None, "bf16")
    t0, c0 = time.perf_counter(), time.process_time()
    kernels = get_schedule("flash2").from_dict({}, w, hw).kernels()
    er = simulate_program(hw, kernels, granularity=granularity)
    wall = time.perf_counter() - t0
    print(f"  (N={n} {granularity}: CPU time {time.process_time() - c0:.2f} s, wall "
          f"{wall:.2f} s; wall > CPU means other processes shared the core)")
    return er, wall


def main() -> None:
    import sys
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
    if "--no-errors" not in sys.argv:
        errors(hw)


if __name__ == "__main__":
    main()
