"""Unloaded memory latency of the GPU (pointer chase), for the preset's ``latency`` fields.

One thread follows a random cyclic chain of 8-byte indices spaced ``STRIDE`` bytes apart through
a buffer of S bytes, with ``ld.global.cg`` (L2, not L1). Each load depends on the previous one,
so the time per load is the latency. S = 4-16 MiB stays in L2 (a first pass warms it; the
chain is walked again); S = 512 MiB-2 GiB misses L2 on every load (HBM). The kernel is timed
with CUDA events over ``steps`` loads (median of 5 launches), so launch overhead (~5 us) is
negligible against 20-200 ms. Writes ``latency_probe.json`` to $OUT. Needs CuPy only.

Usage: OUT=out python3 latency_probe.py
"""
from __future__ import annotations

import json
import os
import statistics
import sys

import cupy as cp
import numpy as np

SRC = r"""
extern "C" __global__ void chase(const unsigned long long* __restrict__ nxt, long long steps,
                                 unsigned long long start, unsigned long long* out) {
    unsigned long long p = start;
    long long t0 = clock64();
    for (long long i = 0; i < steps; i++) p = __ldcg(nxt + p);
    long long t1 = clock64();
    out[0] = p;
    out[1] = (unsigned long long)(t1 - t0);
}
"""
STRIDE = 256                      # bytes between chain elements (two L2 lines apart)


def chain(nbytes: int, seed: int = 0):
    """A random cyclic permutation over the buffer's elements, as index-of-next; also the
    visiting order (element indices)."""
    step = STRIDE // 8
    n = nbytes // STRIDE
    order = np.random.default_rng(seed).permutation(n).astype(np.uint64) * step
    nxt = np.zeros(nbytes // 8, dtype=np.uint64)
    nxt[order] = np.roll(order, -1)
    return cp.asarray(nxt), order


def busy(seconds: float = 0.5) -> None:
    """Keep the GPU busy so that its clocks are up (a single-thread kernel does not raise them)."""
    a = cp.random.random((4096, 4096), dtype=cp.float32)
    ev = cp.cuda.Event()
    t = cp.cuda.Event()
    t.record()
    while True:
        a = a @ a * 1e-3
        ev.record()
        ev.synchronize()
        if cp.cuda.get_elapsed_time(t, ev) > seconds * 1e3:
            break


def main() -> int:
    fn = cp.RawKernel(SRC, "chase")
    out = cp.zeros(2, dtype=cp.uint64)
    res = {"stride_bytes": STRIDE, "points": []}
    for mib, steps in ((1, 200_000), (4, 200_000), (16, 200_000), (32, 200_000),
                       (512, 40_000), (2048, 40_000)):
        nxt, order = chain(mib << 20)
        cached = (mib << 20) <= (32 << 20)
        # L2-resident sizes: a first walk of the whole chain warms L2, then every timed walk
        # hits. Larger ones: each timed walk starts where the previous one stopped, on lines
        # no walk has touched (2M+ elements, 40k per walk), so every load misses L2.
        if cached:
            fn((1,), (1,), (nxt, cp.int64(len(order)), cp.uint64(int(order[0])), out))
        times, cycles = [], []
        for rep in range(5):
            busy(0.3)
            start = int(order[0]) if cached else int(order[(rep + 1) * steps])
            a, b = cp.cuda.Event(), cp.cuda.Event()
            a.record()
            fn((1,), (1,), (nxt, cp.int64(steps), cp.uint64(start), out))
            b.record()
            b.synchronize()
            times.append(cp.cuda.get_elapsed_time(a, b) * 1e-3)
            cycles.append(int(out[1].get()) / steps)
        t = statistics.median(times)
        res["points"].append({"buffer_bytes": mib << 20, "steps": steps, "l2_resident": cached,
                              "seconds": t, "ns_per_load": t / steps * 1e9,
                              "sm_cycles_per_load": statistics.median(cycles),
                              "spread": (max(times) - min(times)) / t})
        print(f"{mib:5d} MiB: {t / steps * 1e9:7.1f} ns, {statistics.median(cycles):6.1f} SM "
              f"cycles per dependent load (spread {(max(times) - min(times)) / t:.1%})",
              flush=True)
        del nxt
    props = cp.cuda.runtime.getDeviceProperties(0)
    res["gpu"] = props["name"].decode()
    res["sm_clock_khz"] = props.get("clockRate")
    with open(os.path.join(os.environ.get("OUT", "."), "latency_probe.json"), "w") as f:
        json.dump(res, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
