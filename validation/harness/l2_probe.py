"""L2 state probes, profiled by Nsight Compute with ``--cache-control none`` (see l2_probe.sh).

Two questions the kernel measurements (gpu_cases.json) leave open, each answered from DRAM
counters of one profiled read-only kernel whose preceding L2 state this script sets up:

A. *Effective capacity for re-read data.* A buffer of S bytes is read once (not profiled), then
   read again by CTAs that sit elsewhere in the grid (so, mostly on other SMs); the second
   read's ``dram__bytes_read`` is what L2 did not keep. ``same`` repeats the first pass's grid
   order instead. S runs from 8 to 96 MB around the 50 MiB L2.
B. *What do_bench's flush leaves dirty.* After a clean start, ``zero_()`` of 256 MB (exactly
   triton.testing.do_bench's L2 flush), a read-only kernel over F bytes of another buffer; its
   ``dram__bytes_write`` is the write-back of the flush's dirty lines it evicted. F runs from 4
   to 256 MB.

Every probe starts from a clean L2: a read of a separate 512 MB buffer evicts (and so writes
back) whatever was there, before the setup. The profiled kernel is the only one between
cudaProfilerStart/Stop, inside an NVTX range named by the probe id.

Usage (under ncu, see l2_probe.sh): python3 l2_probe.py
"""
from __future__ import annotations

import json
import os
import sys

import torch
import triton
import triton.language as tl

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from profiled import profiled  # noqa: E402

MB = 1_000_000
CHUNK = 64 * 1024                    # bytes each CTA reads in the chunked read kernel


@triton.jit
def _read_chunks(x_ptr, out_ptr, n_chunks, shift, CHUNK_ELEMS: tl.constexpr,
                 BLOCK: tl.constexpr):
    pid = tl.program_id(0)
    c = (pid + shift) % n_chunks
    base = c.to(tl.int64) * CHUNK_ELEMS
    acc = tl.zeros((BLOCK,), dtype=tl.float32)
    for off in range(0, CHUNK_ELEMS, BLOCK):
        acc += tl.load(x_ptr + base + off + tl.arange(0, BLOCK)).to(tl.float32)
    tl.store(out_ptr + pid, tl.sum(acc, axis=0))


def read(x: torch.Tensor, shift: int = 0) -> torch.Tensor:
    """Read every byte of bf16 ``x`` once, 64 KiB per CTA; CTA p reads chunk (p + shift)."""
    elems = CHUNK // 2
    n = x.numel() // elems
    out = torch.empty(n, device=x.device, dtype=torch.float32)
    _read_chunks[(n,)](x, out, n, shift, CHUNK_ELEMS=elems, BLOCK=4096, num_warps=8)
    return out


def main() -> int:
    dev = torch.device("cuda")
    props = torch.cuda.get_device_properties(dev)
    prov = {"gpu": props.name, "sms": props.multi_processor_count,
            "l2_bytes": getattr(props, "L2_cache_size", None), "torch": torch.__version__,
            "triton": triton.__version__, "cuda": torch.version.cuda}
    print(json.dumps(prov), flush=True)
    g = torch.Generator(device=dev).manual_seed(0)
    cleaner = torch.randn(512 * MB // 2, device=dev, dtype=torch.bfloat16, generator=g)
    flush = torch.empty(int(256e6 // 4), dtype=torch.int, device=dev)     # do_bench's buffer
    big = torch.randn(256 * MB // 2, device=dev, dtype=torch.bfloat16, generator=g)

    def clean():
        read(cleaner)
        torch.cuda.synchronize()

    def profile(pid, fn):
        profiled(pid, fn)
        print(f"probe {pid}", flush=True)

    read(cleaner)          # compile and warm up outside the profiled ranges
    torch.cuda.synchronize()
    probes = []
    # A: effective capacity for data re-read from other SMs
    for s_mb in (8, 12, 16, 20, 24, 28, 32, 36, 40, 44, 48, 56, 64, 96):
        nbytes = s_mb * MB // CHUNK * CHUNK
        x = big[: nbytes // 2]
        n = nbytes // CHUNK
        for mode, shift in (("other", n // 2 + 7), ("same", 0)):
            if mode == "same" and s_mb not in (16, 24, 32, 40, 48, 64):
                continue
            pid = f"reread_{mode}_{s_mb}MB"
            clean()
            read(x)                        # first pass: x enters L2 (clean lines)
            profile(pid, lambda: read(x, shift))
            probes.append({"id": pid, "experiment": "reread", "mode": mode, "bytes": nbytes})
    # B: the flush's dirty lines that a read of F bytes evicts
    for f_mb in (4, 8, 16, 24, 32, 48, 64, 128, 256):
        nbytes = f_mb * MB // CHUNK * CHUNK
        y = big[: nbytes // 2]
        pid = f"after_flush_read_{f_mb}MB"
        clean()
        flush.zero_()
        profile(pid, lambda: read(y))
        probes.append({"id": pid, "experiment": "after_flush", "bytes": nbytes})
    # B': the same with nothing written before (control: write-back should be ~0)
    for f_mb in (64, 256):
        nbytes = f_mb * MB // CHUNK * CHUNK
        y = big[: nbytes // 2]
        pid = f"clean_read_{f_mb}MB"
        clean()
        profile(pid, lambda: read(y))
        probes.append({"id": pid, "experiment": "clean_control", "bytes": nbytes})
    out = os.environ.get("OUT", ".")
    with open(os.path.join(out, "l2_probes.json"), "w") as f:
        json.dump({"provenance": prov, "probes": probes}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
