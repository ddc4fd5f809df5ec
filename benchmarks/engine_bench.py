"""Engine speed and granularity agreement: flash2 forward on h100-sxm, batch x heads = 32,
d = 128, bf16.

Prints, each warm (numba code loaded by a first small run) and as CPU time of this process:
the tile-level time and events/s at N = 16384 (target <= 10 s); the block mode (the tile model
as a numba step simulation) at N = 16384 and N = 131072; the wave mode (one event per thread
block, approximate) at N = 131072 (target for the long-sequence coarse mode: <= 2 s); then,
over the side-by-side cases of tests/engine/test_engine_granularity.py, the max |error| of
block and of wave simulated time against tile level, per schedule (target: 2 %; bytes must be
equal). Run: ``python benchmarks/engine_bench.py`` (``--no-errors`` skips the error table).
"""
from __future__ import annotations

import importlib.util
import pathlib
import sys
import time

from memsim.engine import simulate_program
from memsim.hardware import load_hardware
from memsim.schedulers import get_schedule
from memsim.workloads import AttentionWorkload

_TESTS = pathlib.Path(__file__).resolve().parent.parent / "tests/engine/test_engine_granularity.py"


def _cases():
    """The side-by-side cases of the engine tests (one list for tests and figures)."""
    spec = importlib.util.spec_from_file_location("engine_granularity_cases", _TESTS)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.CASES, mod._id


def errors(hw) -> None:
    """Block and wave vs tile simulated time, per schedule: max |error| over its shapes."""
    cases, name = _cases()
    worst: dict = {}
    for kind, w, opts in cases:
        ks = get_schedule(kind).from_dict(opts, w, hw).kernels()
        t = simulate_program(hw, ks, granularity="tile")
        for g in ("block", "wave"):
            r = simulate_program(hw, ks, granularity=g)
            assert r.levels == t.levels and r.tensors == t.tensors, (kind, g)
            e = r.time_s / t.time_s - 1
            worst.setdefault((kind, g), []).append(e)
    print(f"simulated time vs tile level over {len(cases)} cases of {_TESTS.name} "
          "(bytes equal in every case):")
    print(f"  {'schedule':15s} {'cases':>5s} {'block max|err|':>15s} {'wave max|err|':>14s}  "
          "wave errors")
    for kind in dict.fromkeys(k for k, _, _ in cases):
        b, wv = worst[(kind, "block")], worst[(kind, "wave")]
        print(f"  {kind:15s} {len(b):5d} {max(map(abs, b)):15.2e} {max(map(abs, wv)):14.2%}  "
              f"({', '.join(f'{e:+.2%}' for e in wv)})")


def bench(hw, n: int, granularity: str):
    w = AttentionWorkload(1, 32, 32, n, n, 128, False, None, None, "bf16")
    t0, c0 = time.perf_counter(), time.process_time()
    kernels = get_schedule("flash2").from_dict({}, w, hw).kernels()
    er = simulate_program(hw, kernels, granularity=granularity)
    return er, time.process_time() - c0, time.perf_counter() - t0


def main() -> None:
    hw = load_hardware("h100-sxm")
    t0 = time.perf_counter()
    for g in ("tile", "block", "wave"):          # load the numba code (cache=True)
        bench(hw, 256, g)
    print(f"warm-up (numba load/compile): {time.perf_counter() - t0:.2f} s")
    print("flash2 bh=32 d=128 bf16 on h100-sxm (CPU s of this process; wall in brackets):")
    ref = {}
    for n, g in ((16384, "tile"), (16384, "block"), (16384, "wave"), (131072, "block"),
                 (131072, "wave")):
        er, cpu, wall = bench(hw, n, g)
        ref.setdefault(n, er)
        events = f"{er.events:,} events ({er.events / cpu:,.0f}/s)"
        vs = "" if er is ref[n] else f", {er.time_s / ref[n].time_s - 1:+.2e} vs {ref[n].granularity}"
        print(f"  N={n:6d} {g:5s}: {cpu:5.2f} s CPU [{wall:5.2f} s], {events}, simulated "
              f"{er.time_s * 1e3:8.3f} ms{vs}, HBM read {er.levels['hbm'].read_bytes / 1e9:.3f} GB, "
              f"bytes equal: {er.levels == ref[n].levels}")
    print("targets: tile N=16384 <= 10 s; coarse mode N=131072 <= 2 s")
    if "--no-errors" not in sys.argv:
        errors(hw)


if __name__ == "__main__":
    main()
