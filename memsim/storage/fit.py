"""Fitting the storage device model and the PCIe link model to measurements (numpy only).

- :func:`fit_disk_curve`: least squares of ``log(model / measured)`` over all (chunk, threads)
  points of a measured random-read curve (``memsim.validation.data.load_disk_curve``). The
  continuous parameters (latency to first byte, per-request overhead, aggregate channel
  bandwidth) are searched on a log grid refined three times around the best point; the discrete
  ones (channels, page size, queue depth) are enumerated.
- :func:`fit_link`: ``time = fixed + bytes / bandwidth`` per direction, least squares of the
  log time over the pinned host<->device copies (``load_gpu_cases``).

Both are run once by ``benchmarks/offload_fit.py``; the fitted numbers live in the
``h100-vm`` hardware preset with their provenance, and the tests check the stated error.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from .device import StorageDevice

__all__ = ["DiskFit", "LinkFit", "fit_disk_curve", "fit_link", "relative_errors"]

CHANNEL_CHOICES = (1, 2, 4, 8, 16, 32)
PAGE_CHOICES = (4096, 16384, 65536)
QUEUE_DEPTH_CHOICES = (1, 2, 4, 8, 16, 32, 64)


@dataclass(frozen=True)
class DiskFit:
    """A fitted device and its error over the points it was fitted to."""

    device: StorageDevice
    median_rel_error: float
    max_rel_error: float
    rms_log_error: float
    points: int


@dataclass(frozen=True)
class LinkFit:
    """``time = fixed_s + bytes / bandwidth`` for one direction, and its error."""

    direction: str
    fixed_s: float
    bandwidth: float
    median_rel_error: float
    max_rel_error: float
    points: int


def _model(c, t, L, o, bw, ch, page, qd):
    """Vectorised closed form of :meth:`StorageDevice.throughput` (bytes/s). ``L, o, bw`` may be
    broadcast grids; ``c, t`` are the points along the last axis."""
    k = np.maximum(1.0, np.minimum(np.ceil(c / page), ch))
    q = np.minimum(t, qd)
    rate = q / (o + L + c / (k * bw))
    rate = np.minimum(rate, 1.0 / o)
    rate = np.minimum(rate, ch * bw / c)
    return rate * c


def relative_errors(predicted, measured) -> np.ndarray:
    """``predicted / measured - 1`` elementwise."""
    return np.asarray(predicted, float) / np.asarray(measured, float) - 1.0


def fit_disk_curve(curve, name: str = "fitted-disk", capacity_bytes: int | None = None
                   ) -> DiskFit:
    """Fit the device model to a :class:`memsim.validation.data.DiskCurve` (random reads)."""
    c = np.array([p.chunk_bytes for p in curve.points], float)
    t = np.array([p.threads for p in curve.points], float)
    y = np.log(np.array([p.bytes_per_s for p in curve.points], float))
    best = (np.inf, None)
    for ch, page, qd in itertools.product(CHANNEL_CHOICES, PAGE_CHOICES, QUEUE_DEPTH_CHOICES):
        lo = np.log([1e-6, 1e-6, 1e8])          # L (s), o (s), aggregate bandwidth (B/s)
        hi = np.log([1e-3, 1e-3, 1e11])
        for _ in range(4):
            axes = [np.exp(np.linspace(lo[i], hi[i], 16)) for i in range(3)]
            L, o, tot = np.meshgrid(*axes, indexing="ij")
            pred = _model(c, t, L[..., None], o[..., None], (tot / ch)[..., None], ch, page, qd)
            sse = ((np.log(pred) - y) ** 2).sum(axis=-1)
            i = np.unravel_index(np.argmin(sse), sse.shape)
            if sse[i] < best[0]:
                best = (float(sse[i]), (float(L[i]), float(o[i]), float(tot[i]) / ch, ch, page,
                                        qd))
            centre = np.log([L[i], o[i], tot[i]])
            step = (hi - lo) / 15
            lo, hi = centre - 2 * step, centre + 2 * step
    L, o, bw, ch, page, qd = best[1]
    device = StorageDevice(name, page, ch, bw, L, qd, o, capacity_bytes=capacity_bytes)
    pred = np.array([device.throughput(p.chunk_bytes, p.threads) for p in curve.points])
    err = relative_errors(pred, np.exp(y))
    return DiskFit(device, float(np.median(np.abs(err))), float(np.max(np.abs(err))),
                   float(np.sqrt(best[0] / len(c))), len(c))


def fit_link(cases, direction: str) -> LinkFit:
    """Fit ``fixed + bytes / bandwidth`` to copy cases (objects with ``params['bytes']`` and
    ``time_s``), minimising the squared log error over a log grid refined around the best."""
    b = np.array([cs.params["bytes"] for cs in cases], float)
    y = np.array([cs.time_s for cs in cases], float)
    lo, hi = np.log([1e-7, 1e9]), np.log([1e-4, 1e12])
    best = (np.inf, 0.0, 0.0)
    for _ in range(6):
        f_axis = np.exp(np.linspace(lo[0], hi[0], 64))
        bw_axis = np.exp(np.linspace(lo[1], hi[1], 64))
        F, BW = np.meshgrid(f_axis, bw_axis, indexing="ij")
        pred = F[..., None] + b / BW[..., None]
        sse = ((np.log(pred) - np.log(y)) ** 2).sum(axis=-1)
        i = np.unravel_index(np.argmin(sse), sse.shape)
        if sse[i] < best[0]:
            best = (float(sse[i]), float(F[i]), float(BW[i]))
        step = (hi - lo) / 63
        centre = np.log([F[i], BW[i]])
        lo, hi = centre - 2 * step, centre + 2 * step
    _, fixed, bw = best
    err = relative_errors(fixed + b / bw, y)
    return LinkFit(direction, fixed, bw, float(np.median(np.abs(err))),
                   float(np.max(np.abs(err))), len(b))
