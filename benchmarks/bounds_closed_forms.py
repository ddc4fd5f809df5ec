"""Time the closed forms, masks and lower bounds at long sequences (prints figures)."""
import time

from memsim.bounds import ATTENTION_SCHEDULES, attention_lower_bound, attention_traffic
from memsim.workloads.masks import BlockSparse


def main() -> None:
    n = 131072
    for mask in (dict(), dict(causal=True), dict(causal=True, window=4096),
                 dict(causal=True, sparse=BlockSparse(0.1, 128, 0))):
        for schedule in ATTENTION_SCHEDULES:
            t0 = time.perf_counter()
            t = attention_traffic(schedule, seq_q=n, seq_k=n, head_dim=128, dtype_bytes=2,
                                  batch=1, heads=32, block_q=128, block_k=128, block=64,
                                  splits=4, **mask)
            dt = time.perf_counter() - t0
            print(f"{schedule:15s} {str(mask):45s} {dt * 1e3:8.1f} ms  "
                  f"{t.total_bytes / 1e9:12.2f} GB")
        t0 = time.perf_counter()
        lb = attention_lower_bound(seq_q=n, seq_k=n, head_dim=128, dtype_bytes=2,
                                   sram_bytes=227 * 1024, heads=32, **mask)
        print(f"{'lower bound':15s} {str(mask):45s} {(time.perf_counter() - t0) * 1e3:8.1f} ms  "
              f"{lb.io_bytes / 1e9:12.2f} GB ({lb.binding})")


if __name__ == "__main__":
    main()
