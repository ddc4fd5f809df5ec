"""Fit the storage device model to the measured H100-VM disk curve and the PCIe link model to
the pinned host<->device copies, once; print the fitted numbers, their errors, and the simpy
model's agreement with the closed form. The printed numbers are what the ``h100-vm`` preset
stores (memsim/hardware/presets/h100-vm.yaml).

    python benchmarks/offload_fit.py
"""
from __future__ import annotations

import time

import numpy as np

from memsim.storage.device import simulate_reads
from memsim.storage.fit import fit_disk_curve, fit_link
from memsim.validation.data import load_disk_curve, load_gpu_cases


def main() -> None:
    curve = load_disk_curve("h100")
    t0 = time.perf_counter()
    fit = fit_disk_curve(curve, "ssd")
    d = fit.device
    print(f"disk fit ({time.perf_counter() - t0:.1f} s): page {d.page_bytes} B, channels "
          f"{d.channels} x {d.channel_bandwidth / 1e6:.2f} MB/s = "
          f"{d.channels * d.channel_bandwidth / 1e9:.3f} GB/s, latency to first byte "
          f"{d.latency_to_first_byte_s * 1e6:.2f} us, request overhead "
          f"{d.request_overhead_s * 1e6:.2f} us, queue depth {d.queue_depth}")
    print(f"  closed form vs measured over {fit.points} points: median |rel err| "
          f"{fit.median_rel_error:.1%}, max {fit.max_rel_error:.1%}, rms log "
          f"{fit.rms_log_error:.3f}")
    sim, meas = [], []
    print(f"  {'chunk':>9} {'thr':>4} {'measured':>10} {'model':>10} {'simpy':>10}")
    for p in curve.points:
        run = simulate_reads(d, p.chunk_bytes, p.threads,
                             requests_per_thread=max(8, 256 // p.threads))
        sim.append(run.bytes_per_s)
        meas.append(p.bytes_per_s)
        print(f"  {p.chunk_bytes:>9} {p.threads:>4} {p.bytes_per_s / 1e9:>9.3f}G "
              f"{d.throughput(p.chunk_bytes, p.threads) / 1e9:>9.3f}G {run.bytes_per_s / 1e9:>9.3f}G")
    err = np.abs(np.array(sim) / np.array(meas) - 1)
    print(f"  simpy vs measured: median {np.median(err):.1%}, max {err.max():.1%}")
    print(f"  sequential write measured {curve.seq_write_bytes_per_s / 1e9:.3f} GB/s "
          f"(-> write channel bandwidth {curve.seq_write_bytes_per_s / d.channels / 1e6:.1f} MB/s)")
    cases = load_gpu_cases("h100")
    for fam in ("copy_h2d", "copy_d2h"):
        lf = fit_link(cases.family(fam), fam)
        print(f"{fam}: fixed {lf.fixed_s * 1e6:.3f} us + bytes / {lf.bandwidth / 1e9:.3f} GB/s; "
              f"over {lf.points} sizes 4 KiB..1 GiB: median |rel err| {lf.median_rel_error:.2%}, "
              f"max {lf.max_rel_error:.2%}")


if __name__ == "__main__":
    main()
