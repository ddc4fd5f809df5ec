"""Program profiled by Nsight Compute: one profiled call per case, inside an NVTX range.

Run under `ncu --profile-from-start off --nvtx ...` (see run_all.sh). Each case is built and
warmed up outside the profiled window; then `cudaProfilerStart`, one call, synchronize,
`cudaProfilerStop`, all inside the NVTX range named by the case id, so every kernel in the report
maps to its case through the NVTX column.

Usage: python3 ncu_target.py [--budget SECONDS] [--only FAMILY,...] [--done-file PATH]
Stops cleanly (so that ncu writes its report) once the budget is spent; the ids of the cases
profiled are appended to --done-file as they complete.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cases as C  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--budget", type=float, default=1e9)
    ap.add_argument("--only", default="")
    ap.add_argument("--done-file", default=None)
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    import torch
    torch.backends.cuda.matmul.allow_tf32 = False
    cases = [c for c in C.all_cases() if c["ncu"]]
    if args.only:
        fams = set(args.only.split(","))
        cases = [c for c in cases if c["family"] in fams]
    done = open(args.done_file, "a") if args.done_file else None
    for i, case in enumerate(cases):
        if time.monotonic() - t0 > args.budget:
            print(f"ncu_target: budget spent, {len(cases) - i} cases not profiled", flush=True)
            break
        pushed = started = False
        try:
            fn = C.build(case)
            fn()
            fn()
            torch.cuda.synchronize()
            torch.cuda.nvtx.range_push(case["id"])
            pushed = True
            torch.cuda.profiler.start()
            started = True
            fn()
            torch.cuda.synchronize()
            del fn
            if done:
                done.write(case["id"] + "\n")
                done.flush()
            print(f"ncu_target [{i + 1}/{len(cases)}] {case['id']} "
                  f"t={time.monotonic() - t0:.1f}s", flush=True)
        except Exception as e:  # noqa: BLE001
            print(f"ncu_target [{i + 1}/{len(cases)}] {case['id']} ERROR {e!r}"[:300], flush=True)
        finally:
            # always close the window, so that later warm-ups are never profiled or mislabelled
            if started:
                torch.cuda.profiler.stop()
            if pushed:
                torch.cuda.nvtx.range_pop()
            torch.cuda.empty_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
