"""Dataflow SDPA figures: simulation speed at N = 4096, d = 64 (one head), intermediate memory
vs N, throughput vs the fabric's peak, and the naive row buffer's minimum depth vs prediction.

    python benchmarks/dataflow_bench.py            # everything (about a minute)
    python benchmarks/dataflow_bench.py --quick    # speed at N = 1024 only
"""
from __future__ import annotations

import sys
import time

from memsim.dataflow import SdpaParams, run_sdpa
from memsim.dataflow.analysis import max_relative_error, min_buffer_depth, occupancy_vs_seq
from memsim.hardware import load_hardware


def speed(spec, seq: int) -> None:
    print(f"speed: N = {seq}, d = 64, one head, fabric 'dataflow' "
          f"({spec.channel.width} lanes)")
    print("(events: simpy events the units waited on; firings: unit firings simulated; "
          "rates per CPU second)")
    print(f"{'variant':<10} {'wall s':>7} {'cpu s':>7} {'events':>10} {'events/s':>10} "
          f"{'firings':>10} {'firings/s':>10} {'cycles':>10} {'% peak':>7} {'max rel err':>11}")
    for variant in ("naive", "reordered"):
        params = SdpaParams(seq=seq, head_dim=64, variant=variant)
        wall, cpu = time.perf_counter(), time.process_time()
        run = run_sdpa(spec, params)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        firings = sum(u["firings"] for u in run.fabric.units.values())
        print(f"{variant:<10} {wall:>7.2f} {cpu:>7.2f} {run.fabric.events:>10} "
              f"{run.fabric.events / cpu:>10.0f} {firings:>10} {firings / cpu:>10.0f} "
              f"{run.cycles:>10} "
              f"{100 * run.peak_fraction:>6.2f}% {max_relative_error(run):>11.2e}")


def occupancy(spec) -> None:
    seqs = [256, 512, 1024, 2048, 4096, 8192]
    print("\nintermediate memory (peak elements, sum over FIFOs between units; 8 query rows)")
    naive = occupancy_vs_seq(spec, seqs, "naive", head_dim=64, seq_q=8)
    reord = occupancy_vs_seq(spec, seqs, "reordered", head_dim=64, seq_q=8)
    print(f"{'N':>6} {'naive total':>12} {'naive exp->div':>15} {'reordered total':>16} "
          f"{'reordered max FIFO':>24}")
    for n, a, b in zip(seqs, naive, reord):
        print(f"{n:>6} {a['intermediate_peak_elements']:>12} {a['max_fifo_peak_elements']:>15} "
              f"{b['intermediate_peak_elements']:>16} "
              f"{b['max_fifo'] + ' ' + str(b['max_fifo_peak_elements']):>24}")


def depth(spec) -> None:
    print("\nnaive row buffer exp->div: minimum depth without deadlock vs prediction ceil(N/lanes)")
    print(f"{'N':>6} {'lanes':>5} {'predicted':>9} {'measured':>8} {'full-rate depth':>15}")
    for n, lanes in [(256, 64), (1000, 64), (4096, 64), (512, 16), (300, 8)]:
        r = min_buffer_depth(spec, n, head_dim=64, lanes=lanes)
        print(f"{n:>6} {lanes:>5} {r['predicted_entries']:>9} {r['min_depth_entries']:>8} "
              f"{r['full_rate_depth_entries']:>15}")


def main(argv: list[str]) -> None:
    spec = load_hardware("dataflow").fabric
    if "--quick" in argv:
        speed(spec, 1024)
        return
    speed(spec, 4096)
    occupancy(spec)
    depth(spec)


if __name__ == "__main__":
    main(sys.argv[1:])
