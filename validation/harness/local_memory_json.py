"""Condense a local-memory recheck run into ``local_memory.json`` (schema
``memsim.validation.local_memory/1``): per case, the medians over the repeats of each metric.
Pure Python, no torch.

The run (2026-11-22, H100): ``recheck.py`` on 5 FA2 cases and a cuDNN and a cutlass control,
under ``ncu --clock-control none --cache-control all`` with the metrics of METRICS.

Usage: python3 local_memory_json.py PARSED_JSON GPU_TXT OUT_JSON DATE
"""
from __future__ import annotations

import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from condense import gpu_and_driver, write_doc  # noqa: E402

SCHEMA = "memsim.validation.local_memory/1"
METRICS = {"dram_read_bytes": ("dram__bytes_read.sum", 1),
           "dram_write_bytes": ("dram__bytes_write.sum", 1),
           "l2_read_bytes": ("lts__t_sectors_srcunit_tex_op_read.sum", 32),
           "l2_write_bytes": ("lts__t_sectors_srcunit_tex_op_write.sum", 32),
           "local_store_bytes": ("l1tex__t_sectors_pipe_lsu_mem_local_op_st.sum", 32),
           "local_load_bytes": ("l1tex__t_sectors_pipe_lsu_mem_local_op_ld.sum", 32),
           "global_store_bytes": ("l1tex__t_sectors_pipe_lsu_mem_global_op_st.sum", 32)}


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    parsed, gpu_txt, out_path, date = argv
    with open(parsed) as f:
        runs = json.load(f)
    by_case: dict[str, list[dict]] = {}
    for rng, kernels in runs.items():
        if len(kernels) != 1:
            raise SystemExit(f"{rng}: expected one kernel, got {len(kernels)}")
        by_case.setdefault(rng.rpartition("#")[0], []).append(kernels[0])
    cases = {}
    for case, ks in by_case.items():
        rec = {"kernel": ks[0]["kernel"][:60], "repeats": len(ks)}
        for key, (metric, scale) in METRICS.items():
            rec[key] = int(statistics.median(float(k[metric]) for k in ks) * scale)
        cases[case] = rec
    gpu, driver = gpu_and_driver(gpu_txt)
    doc = {"schema": SCHEMA,
           "provenance": {"gpu": gpu, "driver": driver, "date": date,
                          "harness": "validation/harness/recheck.py under ncu --cache-control all "
                                     "--clock-control none, metrics " +
                                     ",".join(m for m, _ in METRICS.values()),
                          "why": "FA2's L2 writes are 7.7-29x its output: are they local-memory "
                                 "spills (255 registers per thread)?"},
           "cases": cases}
    return write_doc(out_path, doc, "cases")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
