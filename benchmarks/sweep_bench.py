#!/usr/bin/env python3
"""Speed of ``memsim sweep``: a coarse-mode (block granularity) attention sweep.

    python benchmarks/sweep_bench.py [--points 10000] [--jobs 2] [--profile]

The grid is the cartesian product below (10,000 points): 2 schedules × 2 head dims × causal or
not × 2 dtypes × 5 sequence lengths (256..4096, seq_q = seq_k) × 5 batch sizes × 5 head counts
(1..16, kv_heads = heads) × 5 key-block sizes, on an H100 (flash2 grids of 2 .. 2,560 thread
blocks, flash1 grids of 1 .. 80). ``--points N``
takes the first N points of a seeded shuffle of that product (a representative subset).
Prints points/s and the wall time; ``--profile`` also profiles 200 points in this process
and prints where the time goes (top functions by own time).
"""
from __future__ import annotations

import argparse
import cProfile
import io
import itertools
import os
import pstats
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from memsim.sweep import prepare_base, run_points, run_sweep  # noqa: E402

CONFIG = ROOT / "examples" / "attention-flash2-h100.yaml"
BASE = [("simulation.granularity", "block")]
AXES = {
    "schedule.kind": ["flash1", "flash2"],
    "workload.head_dim": [64, 128],
    "workload.causal": [False, True],
    "workload.dtype": ["bf16", "fp16"],
    "seq": [256, 512, 1024, 2048, 4096],
    "workload.batch": [1, 2, 3, 4, 5],
    "heads": [1, 2, 4, 8, 16],
    "schedule.block_k": [32, 48, 64, 96, 128],
}


def points(n: int) -> list[dict]:
    """The first ``n`` points of the shuffled product (all 10,000 when n >= 10,000)."""
    out = []
    for combo in itertools.product(*AXES.values()):
        p = dict(zip(AXES, combo))
        seq, heads = p.pop("seq"), p.pop("heads")
        p["workload.seq_q"] = p["workload.seq_k"] = seq
        p["workload.heads"] = p["workload.kv_heads"] = heads
        out.append(p)
    random.Random(0).shuffle(out)
    return out[:n]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--points", type=int, default=10_000)
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--profile", action="store_true")
    args = ap.parse_args()
    pts = points(args.points)
    t0 = time.perf_counter()
    table = run_sweep(CONFIG, pts, overrides=BASE, jobs=args.jobs)
    wall = time.perf_counter() - t0
    failed = len(table.failed)
    print(f"sweep_bench: {len(pts)} points, {args.jobs} jobs, granularity block: "
          f"{wall:.1f} s, {len(pts) / wall:.0f} points/s ({failed} failed points)")
    if failed:
        print(f"  first failure: {table.failed[0]['error'][:200]}")
    if args.profile:
        base = prepare_base(CONFIG, BASE)
        chunk = list(enumerate(pts[:200]))
        prof = cProfile.Profile()
        t0 = time.perf_counter()
        prof.runcall(run_points, base, chunk)
        serial = time.perf_counter() - t0
        print(f"profile: 200 points serially in {serial:.2f} s "
              f"({serial / 200 * 1e3:.1f} ms/point, profiler overhead included)")
        buf = io.StringIO()
        pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(15)
        print(buf.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
