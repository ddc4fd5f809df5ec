"""Tensor-core throughput of the legacy ``mma.sync`` instruction (m16n8k16, bf16 and fp16 in,
fp32 accumulate), the instruction class of FlashAttention-2 and cutlass fmha on sm80/sm90.

Every warp issues 8 independent ``mma.sync`` chains from registers (no memory traffic) for
``ITERS`` iterations; 4-16 thread blocks of 8 warps per SM. Time: CUDA events, median of 5
launches after a warm-up; the SM clock (NVML) is sampled around the timed launches. Writes
``mma_probe.json`` to $OUT. Needs CuPy (NVML through cupy's runtime is not required: the clock
comes from pynvml when present).

Usage: OUT=out python3 mma_probe.py
"""
from __future__ import annotations

import json
import os
import statistics
import sys

import cupy as cp

SRC = r"""
extern "C" __global__ void mma_loop(float* out, int iters) {
    unsigned a0 = 0x3c003c00u ^ threadIdx.x, a1 = 0x3c003c00u, a2 = 0x3c003c00u, a3 = 0x3c003c00u;
    unsigned b0 = 0x3c003c00u ^ blockIdx.x, b1 = 0x3c003c00u;
    float c[8][4];
    #pragma unroll
    for (int j = 0; j < 8; j++) { c[j][0] = c[j][1] = c[j][2] = c[j][3] = 0.f; }
    for (int i = 0; i < iters; i++) {
        #pragma unroll
        for (int j = 0; j < 8; j++) {
            asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.DT.DT.f32 "
                         "{%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                         : "+f"(c[j][0]), "+f"(c[j][1]), "+f"(c[j][2]), "+f"(c[j][3])
                         : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
        }
    }
    float s = 0.f;
    #pragma unroll
    for (int j = 0; j < 8; j++) s += c[j][0] + c[j][1] + c[j][2] + c[j][3];
    out[blockIdx.x * blockDim.x + threadIdx.x] = s;
}
"""
ITERS = 8192
WARPS = 8
FLOPS_PER_MMA = 2 * 16 * 8 * 16


def sm_clock_mhz():
    try:
        import pynvml
        pynvml.nvmlInit()
        h = pynvml.nvmlDeviceGetHandleByIndex(0)
        return pynvml.nvmlDeviceGetClockInfo(h, pynvml.NVML_CLOCK_SM)
    except Exception:  # noqa: BLE001
        return None


def main() -> int:
    out_dir = os.environ.get("OUT", "out")
    os.makedirs(out_dir, exist_ok=True)
    dev = cp.cuda.Device(0)
    sms = dev.attributes["MultiProcessorCount"]
    name = cp.cuda.runtime.getDeviceProperties(0)["name"].decode()
    results = []
    for dt in ("bf16", "f16"):
        kern = cp.RawKernel(SRC.replace("DT", dt), "mma_loop",
                            options=("--gpu-architecture=sm_90",))
        for per_sm in (4, 8, 16):
            blocks = sms * per_sm
            out = cp.zeros(blocks * WARPS * 32, dtype=cp.float32)
            args = (out, cp.int32(ITERS))
            kern((blocks,), (WARPS * 32,), args)
            cp.cuda.runtime.deviceSynchronize()
            times, clocks = [], []
            for _ in range(5):
                t0, t1 = cp.cuda.Event(), cp.cuda.Event()
                t0.record()
                kern((blocks,), (WARPS * 32,), args)
                t1.record()
                clocks.append(sm_clock_mhz())
                t1.synchronize()
                times.append(cp.cuda.get_elapsed_time(t0, t1) * 1e-3)
            t = statistics.median(times)
            flops = blocks * WARPS * ITERS * 8 * FLOPS_PER_MMA
            rec = {"dtype": "bf16" if dt == "bf16" else "fp16", "blocks_per_sm": per_sm,
                   "warps_per_block": WARPS, "median_s": t, "flops": flops,
                   "tflops": flops / t / 1e12, "sm_clock_mhz": clocks}
            results.append(rec)
            print(f"mma.sync {rec['dtype']} {per_sm:2d} blocks/SM: {rec['tflops']:7.1f} TFLOP/s "
                  f"({t * 1e3:.2f} ms, clock {clocks})", flush=True)
    doc = {"schema": "memsim.validation.mma_probe/1",
           "provenance": {"gpu": name, "sms": sms, "cupy": cp.__version__},
           "method": "RawKernel (NVRTC, sm_90): 8 independent mma.sync.m16n8k16 chains per "
                     f"warp from registers, {ITERS} iterations; CUDA events, median of 5 "
                     "launches after a warm-up; SM clock from NVML during the launches",
           "cases": results}
    with open(os.path.join(out_dir, "mma_probe.json"), "w") as f:
        json.dump(doc, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
