"""Condense a recheck.py run (ncu CSV parsed by ``parse_ncu.py --all``) into the committed
``rechecks.json`` (schema ``memsim.validation.rechecks/1``): per case and kernel, the median of
the repeats' DRAM read/write bytes, L2 read bytes and kernel time. Pure Python, no torch.

Usage: python3 rechecks_json.py PARSED_JSON GPU_TXT OUT_JSON DATE WHY
PARSED_JSON is ``parse_ncu.py --all`` output (ranges named ``CASE#REPEAT``); GPU_TXT the
``nvidia-smi --query-gpu=name,driver_version --format=csv,noheader`` line.
"""
from __future__ import annotations

import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from condense import gpu_and_driver, write_doc  # noqa: E402

SCHEMA = "memsim.validation.rechecks/1"
HARNESS = ("validation/harness/recheck.py under ncu --cache-control all --clock-control none "
           "({n} profiled calls per case)")
NAME_PREFIX = 40          # kernels are matched by the start of their demangled name


def condense(parsed: dict) -> tuple[dict, int]:
    by_case: dict[str, list[list[dict]]] = {}
    for rng, kernels in parsed.items():
        case, _, rep = rng.rpartition("#")
        if not case or not rep.isdigit():
            raise SystemExit(f"range {rng!r}: expected CASE#REPEAT")
        by_case.setdefault(case, []).append(kernels)
    out, repeats = {}, 0
    for case, reps in by_case.items():
        if len({len(r) for r in reps}) != 1:
            raise SystemExit(f"{case}: the repeats ran different numbers of kernels")
        repeats = len(reps)
        ks = []
        for i in range(len(reps[0])):
            col = [r[i] for r in reps]
            rd = [int(k["dram__bytes_read.sum"]) for k in col]
            wr = [int(k["dram__bytes_write.sum"]) for k in col]
            ks.append({"name_contains": col[0]["kernel"][:NAME_PREFIX],
                       "dram_read_bytes": int(statistics.median(rd)),
                       "dram_write_bytes": int(statistics.median(wr)),
                       "l2_read_bytes": int(statistics.median(
                           int(k["lts__t_sectors_srcunit_tex_op_read.sum"]) * 32 for k in col)),
                       "gpu_time_s": statistics.median(
                           float(k["gpu__time_duration.sum"]) * 1e-9 for k in col),
                       "repeats": {"dram_read_bytes": rd, "dram_write_bytes": wr}})
        out[case] = {"repeats": len(reps), "kernels": ks}
    return out, repeats


def main(argv: list[str]) -> int:
    if len(argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    parsed_path, gpu_txt, out_path, date, why = argv
    with open(parsed_path) as f:
        cases, n = condense(json.load(f))
    gpu, driver = gpu_and_driver(gpu_txt)
    doc = {"schema": SCHEMA,
           "provenance": {"gpu": gpu, "driver": driver, "date": date,
                          "harness": HARNESS.format(n=n), "why": why},
           "cases": cases}
    return write_doc(out_path, doc, "cases")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
