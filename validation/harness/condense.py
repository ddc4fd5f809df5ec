"""Shared helpers of the scripts that condense a run's outputs into a committed JSON file
(``*_json.py``). Pure Python, no torch."""
from __future__ import annotations

import json


def gpu_and_driver(gpu_txt: str) -> tuple[str, str]:
    """(GPU name, driver) from an ``nvidia-smi --query-gpu=name,driver_version
    --format=csv,noheader`` line, or the last line of a ``--format=csv`` output."""
    with open(gpu_txt) as f:
        line = f.read().strip().splitlines()[-1]
    gpu, driver = (s.strip() for s in line.split(",")[:2])
    return gpu, driver


def write_doc(out_path: str, doc: dict, what: str) -> int:
    """Write ``doc`` as indented JSON with a final newline; report ``len(doc[what])``."""
    with open(out_path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"{len(doc[what])} {what} -> {out_path}")
    return 0
