"""Storage device and link models: fits to the measured H100-VM data, simpy vs closed form,
relations, byte counts."""
from __future__ import annotations

import numpy as np
import pytest

from memsim import load_hardware
from memsim.errors import InputError
from memsim.storage import LinkModel, StorageDevice, simulate_reads
from memsim.storage.fit import fit_disk_curve, fit_link
from memsim.validation.data import load_disk_curve, load_gpu_cases

CURVE = load_disk_curve("h100")


def test_disk_fit_error_bound():
    # measured when fitted (benchmarks/offload_fit.py): median 11.2%, max 46.5% over 42 points;
    # the curve itself is not monotone (e.g. 4 MiB x 1 thread reads slower than 1 MiB x 1)
    fit = fit_disk_curve(CURVE)
    assert fit.points == 42
    assert fit.median_rel_error <= 0.12
    assert fit.max_rel_error <= 0.50


def test_preset_disk_reproduces_measured_curve():
    dev = StorageDevice.from_level(load_hardware("h100-vm").memory("ssd"))
    err = np.array([dev.throughput(p.chunk_bytes, p.threads) / p.bytes_per_s - 1
                    for p in CURVE.points])
    assert np.median(np.abs(err)) <= 0.12 and np.abs(err).max() <= 0.50


@pytest.mark.parametrize("chunk,threads", [(4096, 1), (4096, 16), (65536, 4), (1 << 20, 2),
                                           (1 << 24, 32)])
def test_simpy_matches_closed_form(chunk, threads):
    dev = StorageDevice.from_level(load_hardware("h100-vm").memory("ssd"))
    run = simulate_reads(dev, chunk, threads, requests_per_thread=max(8, 256 // threads))
    assert run.bytes == chunk * threads * max(8, 256 // threads)   # every byte counted once
    assert run.bytes_per_s == pytest.approx(dev.throughput(chunk, threads), rel=0.02)
    assert run.time_s >= run.busy_s - 1e-12


def test_throughput_relations():
    dev = StorageDevice.from_level(load_hardware("t4").memory("ssd"))
    chunks = [4096 * 4**i for i in range(7)]
    for t in (1, 4, 32):
        tp = [dev.throughput(c, t) for c in chunks]
        assert all(b >= a for a, b in zip(tp, tp[1:]))           # rises with chunk size
    for c in chunks:
        tp = [dev.throughput(c, t) for t in (1, 2, 4, 8, 16, 32)]
        assert all(b >= a for a, b in zip(tp, tp[1:]))           # rises with threads
        assert dev.throughput(c, 1, sequential=True) >= dev.throughput(c, 1)
    assert dev.throughput(4096, 1) < 0.1 * dev.throughput(1 << 24, 32)   # small random reads
    assert dev.throughput(1 << 24, 32, write=True) == pytest.approx(8 * 125e6)


def test_device_rejects_bad_parameters():
    with pytest.raises(InputError, match="channels must be > 0"):
        StorageDevice("x", 4096, 0, 1e9, 1e-5, 4)


@pytest.mark.parametrize("family", ["copy_h2d", "copy_d2h"])
def test_pcie_fit_error(family):
    # measured when fitted: max 2.5% over 4 KiB..1 GiB in each direction
    fit = fit_link(load_gpu_cases("h100").family(family), family)
    assert fit.points == 10 and fit.max_rel_error <= 0.03
    assert 54e9 <= fit.bandwidth <= 56e9


def test_preset_pcie_link_reproduces_copies():
    hw = load_hardware("h100-vm")
    link = LinkModel.between(hw, "host", "hbm")
    cases = load_gpu_cases("h100")
    for fam, (src, dst) in (("copy_h2d", ("host", "hbm")), ("copy_d2h", ("hbm", "host"))):
        for c in cases.family(fam):
            pred = link.transfer_time(c.params["bytes"], src, dst)
            assert pred == pytest.approx(c.time_s, rel=0.06), (fam, c.params["bytes"])
