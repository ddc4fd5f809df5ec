"""Numerics throughput and JIT compile time.

    python benchmarks/numerics_bench.py [--n 4096] [--d 64] [--heads 8] [--repeat 3]

Prints GFLOP/s (4 * heads * N^2 * d FLOPs per forward, no mask) of memsim's numba flash2 in
float32 and float64 against numpy's naive attention (BLAS matmuls, whole score matrix) on the
same machine, and the flash2 JIT compile time: cold (a fresh NUMBA_CACHE_DIR in a fresh
process) and cached (a second fresh process on that cache).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

_FIRST_CALL = """
import time, numpy as np
t0 = time.perf_counter()
from memsim.numerics import run_attention
t1, c1 = time.perf_counter(), time.process_time()
x = np.ones((1, 1, 8, 8), dtype=np.{dtype})
run_attention("flash2", x, x, x, block_q=4, block_k=4)
print(t1 - t0, time.perf_counter() - t1, time.process_time() - c1)
"""


def _first_call_seconds(cache_dir: str, dtype: str) -> tuple[float, float, float]:
    """(import s, first-call wall s, first-call CPU s) in a fresh process on ``cache_dir``."""
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    out = subprocess.run([sys.executable, "-c", _FIRST_CALL.format(dtype=dtype)], env=env,
                         check=True, capture_output=True, text=True).stdout.split()
    return float(out[0]), float(out[1]), float(out[2])


def naive_numpy(q, k, v, scale):
    """Standard attention with numpy: S = scale QK^T, row softmax, O = PV."""
    s = np.matmul(q, np.swapaxes(k, -1, -2)) * scale
    s -= s.max(axis=-1, keepdims=True)
    np.exp(s, out=s)
    s /= s.sum(axis=-1, keepdims=True)
    return np.matmul(s, v)


def _best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4096)
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--block", type=int, default=128)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)

    with tempfile.TemporaryDirectory() as cache:
        imp, cold, cold_cpu = _first_call_seconds(cache, "float32")
        _, cached, cached_cpu = _first_call_seconds(cache, "float32")
    # One parallel driver serves every schedule, so the cold first call compiles all six.
    print(f"JIT, first float32 call (compiles the driver with all six schedules): "
          f"cold {cold:.2f} s wall / {cold_cpu:.2f} s CPU, cached {cached:.2f} s wall / "
          f"{cached_cpu:.2f} s CPU (import memsim.numerics {imp:.2f} s)")

    from memsim.numerics import run_attention

    n, d, h = args.n, args.d, args.heads
    flops = 4 * h * n * n * d
    print(f"attention forward, batch 1, {h} heads, N = {n}, d = {d}: {flops / 1e9:.1f} GFLOP; "
          f"{os.cpu_count()} CPUs, best of {args.repeat}")
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        q, k, v = (rng.standard_normal((1, h, n, d)).astype(dtype) for _ in range(3))
        run_attention("flash2", q[:, :, :64], k[:, :, :64], v[:, :, :64])  # compile / load
        t = _best(lambda: run_attention("flash2", q, k, v, block_q=args.block,
                                        block_k=args.block), args.repeat)
        print(f"  memsim flash2 numba {np.dtype(dtype).name:8s} {t:8.3f} s "
              f"{flops / t / 1e9:8.2f} GFLOP/s")
        t = _best(lambda: naive_numpy(q, k, v, 1 / np.sqrt(d)), args.repeat)
        print(f"  numpy naive         {np.dtype(dtype).name:8s} {t:8.3f} s "
              f"{flops / t / 1e9:8.2f} GFLOP/s")


if __name__ == "__main__":
    main()
