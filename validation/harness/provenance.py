"""Provenance of a measurement run: GPU, driver, library versions, date. No host name.

Every probe is best effort: a failing one records its error instead of stopping the run.
"""
from __future__ import annotations

import datetime
import hashlib
import os
import platform
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))


def _cmd(args):
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=60).stdout.strip()
    except Exception as e:  # noqa: BLE001 - provenance must never stop the run
        return f"error: {e!r}"


def script_hashes():
    """sha256 of every harness script, so that the data names the code that made it."""
    out = {}
    for name in sorted(os.listdir(HERE)):
        if name.endswith((".py", ".sh")):
            with open(os.path.join(HERE, name), "rb") as f:
                out[name] = hashlib.sha256(f.read()).hexdigest()
    return out


def gpu_smi():
    fields = ("name,driver_version,memory.total,clocks.max.sm,clocks.max.mem,clocks.sm,clocks.mem,"
              "power.limit,pcie.link.gen.current,pcie.link.width.current,pcie.link.gen.max,"
              "pcie.link.width.max,temperature.gpu,persistence_mode,compute_mode")
    raw = _cmd(["nvidia-smi", f"--query-gpu={fields}", "--format=csv,noheader,nounits"])
    vals = [v.strip() for v in raw.splitlines()[0].split(",")] if raw and not raw.startswith("error") else []
    return dict(zip(fields.split(","), vals)) if len(vals) == len(fields.split(",")) else {"raw": raw}


def collect():
    """Return the provenance dict (call on the GPU machine)."""
    prov = {"date_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "python": platform.python_version(), "os_kernel": platform.release(),
            "cpu_count": os.cpu_count()}
    try:
        with open("/proc/cpuinfo") as f:
            prov["cpu_model"] = next((ln.split(":", 1)[1].strip() for ln in f
                                      if ln.startswith("model name")), None)
    except OSError:
        pass
    try:
        import torch
        p = torch.cuda.get_device_properties(0)
        prov.update({
            "gpu_name": p.name, "sm_count": p.multi_processor_count,
            "l2_bytes": getattr(p, "L2_cache_size", None), "gpu_memory_bytes": p.total_memory,
            "compute_capability": f"{p.major}.{p.minor}",
            "torch": torch.__version__, "cuda_runtime": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
        })
    except Exception as e:  # noqa: BLE001
        prov["torch_error"] = repr(e)
    for mod in ("triton", "numpy", "cupy"):
        try:
            prov[mod] = __import__(mod).__version__
        except Exception as e:  # noqa: BLE001
            prov[mod] = f"unavailable: {e!r}"
    prov["nvidia_smi"] = gpu_smi()
    prov["driver"] = prov["nvidia_smi"].get("driver_version")
    prov["ncu_version"] = _cmd(["ncu", "--version"]).splitlines()[-1:]
    prov["nvcc_version"] = _cmd(["nvcc", "--version"]).splitlines()[-2:]
    prov["harness_sha256"] = script_hashes()
    return prov
