"""Do concurrent reads of the same data by thread blocks on one SM reach L2 once?

The committed attention and SIMT-GEMM kernels read fewer L2 sectors than their tile programs
load, most where thread blocks that share data run side by side in lockstep (FA2 non-causal
at n = 512 reads K/V about twice per head where its four query tiles load it four times;
causal, whose tiles walk K/V from different starting blocks, reads exactly what it loads).
This probe isolates the mechanism with synthetic kernels (CuPy/NVRTC, no torch needed for
them), profiled under Nsight Compute (l2_merge.sh):

A. *Placement.* Which SM runs each thread block (``%smid``) when 1, 2 or 4 blocks fit per SM:
   are consecutive blocks of the grid placed on the same SM?
B. *Merging.* Each block reads a 128 KiB region, 16 B per thread, through ``cp.async.cg``
   (FA2's and cutlass's loads), ``ld.global.cg`` or plain ``ld.global``. The region of block b
   is ``b`` (distinct), ``b // k`` (consecutive blocks share), ``b % (G/2)`` (blocks half a
   grid apart share) or 0 (all share). L2 sectors read are compared with what the blocks load.
C. *The attention kernels themselves* (torch SDPA, bf16) at small and mid sizes, with extra
   L1/L2 counters: sectors L2 sent to L1 (``l1tex__m_xbar2l1tex_read_sectors``), L2 read
   requests and sectors, and L2 lookup hits.

Usage (under ncu, see l2_merge.sh): python3 l2_merge.py
"""
from __future__ import annotations

import json
import os
import sys

import cupy as cp

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

SRC = r"""
extern "C" __global__ void where(unsigned* smid, unsigned long long* t0, long long spin_ns) {
    extern __shared__ char pad[];
    unsigned id; unsigned long long t, e;
    asm volatile("mov.u32 %0, %%smid;" : "=r"(id));
    asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
    if (threadIdx.x == 0) { smid[blockIdx.x] = id; t0[blockIdx.x] = t; pad[0] = 1; }
    e = t;
    while (e - t < (unsigned long long)spin_ns) asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(e));
}

extern "C" __global__ void shared_read(const int4* __restrict__ buf, float* out, int mode,
                                       int group, long long region, int nregions, int load) {
    extern __shared__ int4 stage[];
    int b = blockIdx.x, r;
    if (mode == 0) r = b; else if (mode == 1) r = b / group;
    else if (mode == 2) r = b % nregions; else r = 0;
    const int4* p = buf + (long long)r * region;
    float acc = 0.f;
    const int T = blockDim.x;
    for (long long off = 0; off < region; off += 4 * T) {
        if (load == 0) {
            #pragma unroll
            for (int u = 0; u < 4; u++) {
                unsigned s = (unsigned)__cvta_generic_to_shared(&stage[u * T + threadIdx.x]);
                asm volatile("cp.async.cg.shared.global [%0], [%1], 16;"
                             :: "r"(s), "l"(p + off + u * T + threadIdx.x));
            }
            asm volatile("cp.async.commit_group;");
            asm volatile("cp.async.wait_group 0;");
            __syncthreads();
            #pragma unroll
            for (int u = 0; u < 4; u++) acc += __int_as_float(stage[u * T + threadIdx.x].x);
            __syncthreads();
        } else {
            #pragma unroll
            for (int u = 0; u < 4; u++) {
                int4 v = (load == 1) ? __ldcg(p + off + u * T + threadIdx.x)
                                     : p[off + u * T + threadIdx.x];
                acc += __int_as_float(v.x) + __int_as_float(v.w);
            }
            __syncthreads();
        }
    }
    if (acc == 1234.5f) out[b] = acc;      // keeps the loads; never true on this data
}
"""

MOD = cp.RawModule(code=SRC, options=("-std=c++17",))
WHERE = MOD.get_function("where")
READ = MOD.get_function("shared_read")
SMEM_FOR = {1: 150 * 1024, 2: 100 * 1024, 4: 50 * 1024}     # dynamic smem -> blocks per SM
REGION = 128 * 1024                                           # bytes each block reads
THREADS = 128
LOADS = {0: "cp.async.cg", 1: "ld.global.cg", 2: "ld.global"}
MODES = {0: "distinct", 1: "consecutive", 2: "half_grid_apart", 3: "all_same"}


def profiled(name, fn):
    cp.cuda.Device().synchronize()
    cp.cuda.nvtx.RangePush(name)
    cp.cuda.profiler.start()
    fn()
    cp.cuda.Device().synchronize()
    cp.cuda.profiler.stop()
    cp.cuda.nvtx.RangePop()


def main() -> int:
    out_dir = os.environ.get("OUT", ".")
    dev = cp.cuda.Device()
    sms = dev.attributes["MultiProcessorCount"]
    for fn in (WHERE, READ):
        fn.max_dynamic_shared_size_bytes = max(SMEM_FOR.values())
    record = {"sms": sms, "placement": {}, "reads": []}
    # A: placement of consecutive blocks (not profiled), two grid sizes per occupancy
    for k, smem in SMEM_FOR.items():
        for waves in (1, 2):
            g = sms * k * waves
            smid = cp.zeros(g, dtype=cp.uint32)
            t0 = cp.zeros(g, dtype=cp.uint64)
            WHERE((g,), (THREADS,), (smid, t0, cp.int64(200_000)), shared_mem=smem)
            dev.synchronize()
            record["placement"][f"k{k}_w{waves}"] = {
                "blocks_per_sm": k, "grid": g, "smid": smid.get().tolist(),
                "start_ns": (t0 - t0.min()).get().tolist()}
    # B: shared reads
    nvec = REGION // 16
    buf = cp.random.random(sms * 16 * REGION // 4, dtype=cp.float32)   # read as int4
    outb = cp.zeros(sms * 8, dtype=cp.float32)
    for k, smem in SMEM_FOR.items():
        for waves in (1, 4):
            g = sms * k * waves
            for load in LOADS:
                for mode in MODES:
                    if waves == 4 and mode not in (0, 1):
                        continue
                    name = f"read_k{k}_w{waves}_{LOADS[load]}_{MODES[mode]}"
                    args = (buf, outb, cp.int32(mode), cp.int32(k), cp.int64(nvec),
                            cp.int32(max(1, g // 2)), cp.int32(load))
                    READ((g,), (THREADS,), args, shared_mem=smem)       # warm-up
                    profiled(name, lambda: READ((g,), (THREADS,), args, shared_mem=smem))
                    distinct = {0: g, 1: -(-g // k), 2: max(1, g // 2), 3: 1}[mode]
                    record["reads"].append({"id": name, "blocks_per_sm": k, "grid": g,
                                            "load": LOADS[load], "mode": MODES[mode],
                                            "loaded_bytes": g * REGION,
                                            "distinct_bytes": distinct * REGION})
                    print(name, flush=True)
    # C: the attention kernels with extra counters
    try:
        import torch
        import torch.nn.functional as F
        from torch.nn.attention import SDPBackend, sdpa_kernel
        backends = {"flash": SDPBackend.FLASH_ATTENTION,
                    "efficient": SDPBackend.EFFICIENT_ATTENTION}
        gen = torch.Generator(device="cuda").manual_seed(0)
        attn = []
        for be, n, d, causal in (("flash", 512, 128, False), ("flash", 512, 128, True),
                                 ("flash", 1024, 128, False), ("flash", 2048, 128, False),
                                 ("flash", 512, 64, False), ("efficient", 512, 64, False),
                                 ("efficient", 2048, 64, False),
                                 ("efficient", 512, 128, False)):
            q, k_, v = (torch.randn(4, 16, n, d, device="cuda", dtype=torch.bfloat16,
                                    generator=gen) for _ in range(3))
            with sdpa_kernel(backends[be]):
                F.scaled_dot_product_attention(q, k_, v, is_causal=causal)
                name = f"attn_{be}_b4h16n{n}d{d}" + ("_causal" if causal else "")
                profiled(name, lambda: F.scaled_dot_product_attention(q, k_, v,
                                                                      is_causal=causal))
            attn.append({"id": name, "backend": be, "n": n, "d": d, "causal": causal})
            print(name, flush=True)
        record["attention"] = attn
        record["torch"] = torch.__version__
    except Exception as exc:                 # the synthetic part stands on its own
        record["attention_error"] = repr(exc)
    record["gpu"] = cp.cuda.runtime.getDeviceProperties(0)["name"].decode()
    with open(os.path.join(out_dir, "l2_merge.json"), "w") as f:
        json.dump(record, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
