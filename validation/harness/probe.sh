#!/bin/bash
# Short probe of the device machine: tools, versions, disk. Writes $OUT/probe.log.
exec > >(tee "${OUT:-/tmp}/probe.log") 2>&1
set -x
nvidia-smi
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm,clocks.max.mem,power.limit,pcie.link.gen.current,pcie.link.width.current --format=csv
which python3 ncu nsys fio nvcc; ncu --version; nvcc --version | tail -2
python3 - <<'PY'
import torch, triton, sys, platform
print("python", sys.version); print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())
print("triton", triton.__version__)
p = torch.cuda.get_device_properties(0); print(p)
print("L2", getattr(p, "L2_cache_size", None), "sm", p.multi_processor_count)
from torch.nn.attention import SDPBackend, sdpa_kernel
import torch.nn.functional as F
q = torch.randn(1, 2, 256, 64, device="cuda", dtype=torch.bfloat16)
for b in [SDPBackend.FLASH_ATTENTION, SDPBackend.EFFICIENT_ATTENTION, SDPBackend.CUDNN_ATTENTION, SDPBackend.MATH]:
    try:
        with sdpa_kernel([b]):
            F.scaled_dot_product_attention(q, q, q, is_causal=True); torch.cuda.synchronize()
        print("backend ok", b)
    except Exception as e:
        print("backend FAIL", b, repr(e)[:200])
import numpy; print("numpy", numpy.__version__)
PY
nproc; free -g; uname -r
df -hT / /tmp /root 2>/dev/null; mount | grep -v cgroup | head -30
lsblk -o NAME,SIZE,TYPE,MODEL,ROTA,MOUNTPOINT,FSTYPE 2>/dev/null
for d in /sys/block/*; do echo $d $(cat $d/device/model 2>/dev/null) $(cat $d/queue/rotational) $(cat $d/queue/scheduler 2>/dev/null) $(cat $d/queue/max_hw_sectors_kb) ; done
ls /dev/nvme* /dev/vd* 2>/dev/null
cat /proc/sys/vm/drop_caches 2>&1; sync; echo 3 > /proc/sys/vm/drop_caches && echo DROP_OK
python3 - <<'PY'
import os, mmap, time
fn = "/root/odirect_test.bin"
try:
    fd = os.open(fn, os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o644)
    buf = mmap.mmap(-1, 1 << 20); buf.write(os.urandom(1 << 20))
    t = time.perf_counter(); n = 0
    for i in range(64): n += os.pwritev(fd, [buf], i << 20)
    os.fsync(fd); print("odirect write MB/s", n / (time.perf_counter() - t) / 1e6)
    t = time.perf_counter(); n = 0
    for i in range(64): n += os.preadv(fd, [buf], i << 20)
    print("odirect read MB/s", n / (time.perf_counter() - t) / 1e6)
    os.close(fd); os.remove(fn)
except Exception as e: print("ODIRECT FAIL", repr(e))
PY
cat > /tmp/ncu_t.py <<'PY'
import torch
a = torch.randn(2048, 2048, device="cuda", dtype=torch.bfloat16); a @ a; torch.cuda.synchronize()
torch.cuda.nvtx.range_push("probe_gemm")
torch.cuda.profiler.start(); a @ a; torch.cuda.synchronize(); torch.cuda.profiler.stop()
torch.cuda.nvtx.range_pop()
PY
time timeout 120 ncu --clock-control none --profile-from-start off --nvtx -f -o $OUT/probe_rep \
  --metrics dram__bytes_read.sum,dram__bytes_write.sum,lts__t_sectors_srcunit_tex_op_read.sum,lts__t_sectors_srcunit_tex_op_write.sum,gpu__time_duration.sum,launch__grid_size,launch__block_size,launch__registers_per_thread,launch__shared_mem_per_block_dynamic,launch__shared_mem_per_block_static \
  python3 /tmp/ncu_t.py
ncu -i $OUT/probe_rep.ncu-rep --csv --page raw --print-units base | head -5
ncu -i $OUT/probe_rep.ncu-rep --csv --print-units base | head -20
ncu -i $OUT/probe_rep.ncu-rep --print-nvtx-rename kernel --csv --page raw | cut -c1-600 | head -4
ncu --help | grep -i -A2 nvtx | head -40
ls -d /opt/nvidia/nsight-compute/*/extras/python/* 2>/dev/null; ls /opt/nvidia/nsight-compute/
