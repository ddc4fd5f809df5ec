"""Condense an l2_bandwidth.sh run into the committed ``l2_bandwidth.json`` (schema
``memsim.validation.l2_bandwidth/1``) and print the bandwidths. Pure Python, no torch.

Usage: python3 l2_bandwidth_json.py PARSED_JSON GPU_TXT OUT_JSON DATE
PARSED_JSON is ``parse_ncu.py --all`` output of the run; GPU_TXT its nvidia-smi line.
"""
from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from condense import gpu_and_driver, write_doc  # noqa: E402

HARNESS = ("validation/harness/l2_bandwidth.sh (ncu --cache-control none --clock-control none; "
           "Triton re-read kernel, ld.global.cg, warm-up call before the profiled one)")


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    with open(argv[0]) as f:
        parsed = json.load(f)
    cases = {}
    for cid, ks in parsed.items():
        k = ks[0]

        def g(m):
            return float(k.get(m, 0))
        t = g("gpu__time_duration.sum") * 1e-9
        cases[cid] = {
            "kernel": k["kernel"][:40], "gpu_time_s": t,
            "l2_read_bytes": int(g("lts__t_sectors_srcunit_tex_op_read.sum")) * 32,
            "dram_read_bytes": int(g("dram__bytes_read.sum")),
            "l1_global_load_bytes": int(g("l1tex__t_sectors_pipe_lsu_mem_global_op_ld.sum")) * 32,
            "l2_busy_pct": g("lts__t_sectors.avg.pct_of_peak_sustained_elapsed"),
            "l2_peak_sectors_per_cycle": g("lts__t_sectors.sum.peak_sustained"),
            "l2_clock_hz": g("lts__cycles_elapsed.avg.per_second"),
            "sm_clock_hz": g("sm__cycles_elapsed.avg.per_second")}
        c = cases[cid]
        print(f"{cid:28s} {c['l2_read_bytes'] / t / 1e12:6.2f} TB/s from L2 "
              f"(dram {c['dram_read_bytes'] / 1e6:6.1f} MB), L2 busy {c['l2_busy_pct']:5.1f}%, "
              f"ncu L2 peak {c['l2_peak_sectors_per_cycle'] * 32 * c['l2_clock_hz'] / 1e12:6.2f}"
              f" TB/s")
    gpu, driver = gpu_and_driver(argv[1])
    doc = {"schema": "memsim.validation.l2_bandwidth/1",
           "provenance": {"gpu": gpu, "driver": driver, "date": argv[3], "harness": HARNESS},
           "cases": cases}
    return write_doc(argv[2], doc, "cases")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
