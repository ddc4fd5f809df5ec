"""Re-profile chosen cases several times each (one profiled call per repeat), to tell a
measurement artifact from kernel behaviour. Run under ncu like ncu_target.py:
  ncu --clock-control none --cache-control all --profile-from-start off --nvtx \
      --metrics dram__bytes_read.sum,dram__bytes_write.sum,gpu__time_duration.sum \
      python3 recheck.py CASE_ID [CASE_ID ...]
"""
from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cases as C  # noqa: E402
from profiled import profiled  # noqa: E402

REPEATS = 3


def main(ids):
    import torch
    by_id = {c["id"]: c for c in C.all_cases()}
    for cid in ids:
        fn = C.build(by_id[cid])
        fn()
        fn()
        for r in range(REPEATS):
            profiled(f"{cid}#{r}", fn)
        del fn
        print("profiled", cid, flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
