"""Condense one l2_probe.sh run into the committed ``l2_probes.json``
(schema ``memsim.validation.l2_probes/1``). Pure Python, no torch.

Usage: python3 l2_probes_json.py RUN_DIR OUT_JSON DATE
RUN_DIR holds what l2_probe.sh wrote: l2_probes.json (the probe list and provenance from
l2_probe.py), l2_probe_kernels.json (parse_ncu.py output) and probe_gpu.txt (nvidia-smi).
"""
from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from condense import write_doc  # noqa: E402

SCHEMA = "memsim.validation.l2_probes/1"
HARNESS = "validation/harness/l2_probe.sh (ncu --cache-control none --clock-control none)"


def condense(run_dir: str, date: str) -> dict:
    with open(os.path.join(run_dir, "l2_probes.json")) as f:
        meta = json.load(f)
    with open(os.path.join(run_dir, "l2_probe_kernels.json")) as f:
        kernels = json.load(f)
    with open(os.path.join(run_dir, "probe_gpu.txt")) as f:
        device_line = f.read().strip().splitlines()[-1]
    probes = []
    for p in meta["probes"]:
        ks = kernels.get(p["id"])
        if not ks or len(ks) != 1:
            raise SystemExit(f"probe {p['id']}: expected one profiled kernel, got "
                             f"{len(ks or [])}")
        k = ks[0]
        probes.append({**p, "dram_read_bytes": k["dram_read_bytes"],
                       "dram_write_bytes": k["dram_write_bytes"],
                       "l2_read_bytes": k["l2_read_bytes"], "gpu_time_s": k["gpu_time_ns"] * 1e-9,
                       "kernel": k["name"], "grid": k["grid"]})
    prov = {**meta["provenance"], "driver": device_line.split(",")[1].strip(), "date": date,
            "harness": HARNESS, "device_line": device_line}
    return {"schema": SCHEMA, "provenance": prov, "probes": probes}


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    return write_doc(argv[1], condense(argv[0], argv[2]), "probes")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
