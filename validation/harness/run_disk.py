"""Disk read/write throughput curve with O_DIRECT (issue 7 item 1). No GPU needed.

Creates a file of --size-gib on the directory given, drops the page cache where permitted, then
measures: sequential O_DIRECT write (while creating the file) and read; random O_DIRECT reads
over chunk sizes x thread counts (~--seconds each); a 4 KiB random-read latency histogram.
Python threads issue os.preadv into page-aligned mmap buffers (the GIL is released in the call).

Usage: python3 run_disk.py OUT_JSON [--dir /root] [--size-gib 8] [--seconds 0.8] [--budget S]
Writes OUT_JSON after every point.
"""
from __future__ import annotations

import argparse
import datetime
import json
import mmap
import os
import random
import subprocess
import threading
import time

CHUNKS = [4096 << (2 * i) for i in range(7)]  # 4 KiB .. 16 MiB, powers of 4
THREADS = [1, 2, 4, 8, 16, 32]


def _save(path, doc):
    with open(path + ".tmp", "w") as f:
        json.dump(doc, f, indent=1)
    os.replace(path + ".tmp", path)


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError as e:
        return f"error: {e.strerror}"


def device_info(directory):
    info = {"dir": directory}
    try:
        out = subprocess.run(["df", "-T", directory], capture_output=True, text=True).stdout
        dev, fstype = out.splitlines()[1].split()[:2]
        info.update(block_device=dev, filesystem=fstype)
        name = os.path.basename(dev)
        q = f"/sys/block/{name}/queue"
        info["sysfs"] = {k: _read(f"{q}/{k}") for k in (
            "rotational", "scheduler", "nr_requests", "max_hw_sectors_kb", "max_sectors_kb",
            "logical_block_size", "physical_block_size", "read_ahead_kb")}
        info["model"] = _read(f"/sys/block/{name}/device/model")
        info["driver_link"] = os.path.realpath(f"/sys/block/{name}/device/driver") \
            if os.path.exists(f"/sys/block/{name}/device/driver") else None
        info["lsblk"] = subprocess.run(["lsblk", "-o", "NAME,SIZE,TYPE,MODEL,ROTA,TRAN,FSTYPE"],
                                       capture_output=True, text=True).stdout
        info["nvme_devices"] = sorted(x for x in os.listdir("/dev") if x.startswith("nvme"))
    except Exception as e:  # noqa: BLE001
        info["error"] = repr(e)
    return info


def drop_caches():
    try:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


def write_file(path, size, chunk=16 << 20):
    """Sequential O_DIRECT write of random-ish data; returns bytes/s including the final fsync."""
    buf = mmap.mmap(-1, chunk)
    buf.write(os.urandom(1 << 20) * (chunk >> 20))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_DIRECT, 0o644)
    t0 = time.perf_counter()
    try:
        for off in range(0, size, chunk):
            os.pwritev(fd, [buf], off)
        os.fsync(fd)
    finally:
        os.close(fd)
    return size / (time.perf_counter() - t0)


def run_point(path, size, chunk, nthreads, seconds, sequential=False, record_lat=False):
    """Reads for ~seconds with nthreads threads; returns throughput and per-op stats."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    nblocks = size // chunk
    stop = threading.Event()
    results = []
    barrier = threading.Barrier(nthreads + 1)

    def worker(tid):
        buf = mmap.mmap(-1, chunk)
        rng = random.Random(1000 + tid)
        ops = nbytes = 0
        lats = [] if record_lat else None
        # sequential: each thread streams its own contiguous stripe of the file
        pos = tid * (nblocks // nthreads)
        barrier.wait()
        while not stop.is_set():
            if sequential:
                off = (pos % nblocks) * chunk
                pos += 1
            else:
                off = rng.randrange(nblocks) * chunk
            if record_lat:
                t = time.perf_counter()
                n = os.preadv(fd, [buf], off)
                lats.append(time.perf_counter() - t)
            else:
                n = os.preadv(fd, [buf], off)
            ops += 1
            nbytes += n
        results.append((ops, nbytes, lats))

    ths = [threading.Thread(target=worker, args=(i,)) for i in range(nthreads)]
    for t in ths:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    time.sleep(seconds)
    stop.set()
    for t in ths:
        t.join()
    el = time.perf_counter() - t0  # includes the tail of in-flight reads
    os.close(fd)
    ops = sum(r[0] for r in results)
    nbytes = sum(r[1] for r in results)
    out = {"chunk_bytes": chunk, "threads": nthreads, "seconds": el, "ops": ops, "bytes": nbytes,
           "bytes_per_s": nbytes / el, "iops": ops / el,
           "mean_latency_s": nthreads * el / ops if ops else None}
    if record_lat:
        lat = sorted(x for r in results for x in r[2])
        q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]  # noqa: E731
        out["latency_s"] = {"median": q(0.5), "p90": q(0.9), "p99": q(0.99), "p999": q(0.999),
                            "min": lat[0], "max": lat[-1], "n": len(lat)}
        edges = [1e-6 * 2 ** (i / 2) for i in range(0, 41)]  # 1 us .. ~1 s, half-octave bins
        counts = [0] * (len(edges) + 1)
        j = 0
        for x in lat:
            while j < len(edges) and x >= edges[j]:
                j += 1
            counts[j] += 1
        out["latency_histogram"] = {"edges_s": edges, "counts": counts,
                                    "note": "counts[i] = #(edges[i-1] <= x < edges[i]); "
                                            "counts[0] below edges[0], counts[-1] above edges[-1]"}
    return out


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--dir", default="/root")
    ap.add_argument("--size-gib", type=float, default=8)
    ap.add_argument("--seconds", type=float, default=0.8)
    ap.add_argument("--budget", type=float, default=1e9)
    args = ap.parse_args(argv)
    t_start = time.monotonic()
    path = os.path.join(args.dir, "memsim_disk_test.bin")
    st = os.statvfs(args.dir)
    free = st.f_bavail * st.f_frsize
    size = int(min(args.size_gib * 2**30, 0.5 * free)) // (16 << 20) * (16 << 20)
    doc = {"schema": "memsim.validation.disk/1",
           "date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           "device": device_info(args.dir), "file_bytes": size, "free_bytes_before": free,
           "method": "O_DIRECT, python threads calling os.preadv into page-aligned mmap buffers; "
                     "random offsets aligned to the chunk size, uniform over the file",
           "cpu_count": os.cpu_count(), "points": [], "sequential": {}}
    _save(args.out, doc)
    try:
        doc["sequential"]["write_bytes_per_s"] = write_file(path, size)
        doc["sequential"]["write_method"] = "1 thread, 16 MiB O_DIRECT pwritev, then fsync"
        print(f"disk: wrote {size / 2**30:.1f} GiB at "
              f"{doc['sequential']['write_bytes_per_s'] / 1e9:.2f} GB/s", flush=True)
        doc["page_cache_dropped"] = drop_caches()
        for nt in (1, 4):
            p = run_point(path, size, 16 << 20, nt, 2.0, sequential=True)
            doc["sequential"][f"read_{nt}t"] = p
            print(f"disk: seq read 16 MiB x{nt}: {p['bytes_per_s'] / 1e9:.2f} GB/s", flush=True)
        _save(args.out, doc)
        lat = run_point(path, size, 4096, 1, 2.0, record_lat=True)
        doc["latency_4k_qd1"] = lat
        print(f"disk: 4 KiB QD1 median {lat['latency_s']['median'] * 1e6:.1f} us "
              f"p99 {lat['latency_s']['p99'] * 1e6:.1f} us", flush=True)
        _save(args.out, doc)
        for chunk in CHUNKS:
            for nt in THREADS:
                if time.monotonic() - t_start > args.budget:
                    doc["truncated_for_time"] = True
                    raise TimeoutError("disk budget spent")
                p = run_point(path, size, chunk, nt, args.seconds)
                doc["points"].append(p)
                print(f"disk: rand {chunk >> 10:6d} KiB x{nt:2d}: {p['bytes_per_s'] / 1e9:7.3f} GB/s "
                      f"{p['iops']:9.0f} IOPS", flush=True)
                _save(args.out, doc)
    except Exception as e:  # noqa: BLE001 - keep what was measured
        doc["error"] = repr(e)
        print(f"disk: stopped: {e!r}", flush=True)
    finally:
        try:
            os.remove(path)
        except OSError:
            pass
        doc["elapsed_s"] = time.monotonic() - t_start
        _save(args.out, doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
