"""Figures of the LLM package: roofline parity with LLM-Viewer, KV fragmentation on a synthetic
trace, and KV-policy fidelity on synthetic attention inputs. Prints tables; run with python."""
import time

from memsim.llm import load_model
from memsim.llm.kv_fidelity import policy_fidelity, relay_error, synthetic_attention
from memsim.llm.kv_memory import STRATEGIES, simulate_kv_memory
from memsim.llm.kv_policies import get_policy
from memsim.llm.operators import decode_operators, prefill_operators
from memsim.llm.roofline import RooflineMachine, roofline, stage_totals
from memsim.llm.trace import trace_from_data
from memsim.llm.workload import LlmWorkload


def parity() -> None:
    wl = LlmWorkload(load_model("llama-2-7b"), 1, 2048, 1, prefill_schedule="standard",
                     decode_schedule="standard")
    quoted = {"A6000": (768e9, 154.8385e12, 226.9, 18.64),
              "A100-80G": (2039e9, 312e12, 105.9, 7.02),
              "H100": (3072e9, 989.5e12, 40.7, 4.66)}
    print("Llama-2-7B b=1 s=2048 fp16, standard attention: memsim vs LLM-Viewer (ms)")
    for name, (bw, ops, pre_q, dec_q) in quoted.items():
        m = RooflineMachine(name, bw, ops, ops)
        pre = stage_totals(roofline(prefill_operators(wl), m))["time_s"] * 1e3
        dec = stage_totals(roofline(decode_operators(wl, 2048), m))["time_s"] * 1e3
        print(f"  {name:9s} prefill {pre:7.2f} vs {pre_q:6.1f} ({pre / pre_q - 1:+.1%})  "
              f"decode {dec:6.3f} vs {dec_q:5.2f} ({dec / dec_q - 1:+.2%})")


def fragmentation() -> None:
    trace = trace_from_data({"requests": 1000, "seed": 0, "max_len": 2048,
                             "prompt": {"dist": "lognormal", "mean": 161, "sigma": 1.0},
                             "output": {"dist": "lognormal", "mean": 338, "sigma": 1.0}})
    print("\nKV pool 15,000 slots, 1000 requests, lognormal prompt 161 / output 338 (sigma 1)")
    print(f"  {'strategy':18s} {'tokens':>7s} {'reserv':>7s} {'intern':>7s} {'extern':>7s} "
          f"{'batch':>6s} {'max':>4s} {'preempt':>7s}")
    for s in STRATEGIES:
        t = time.perf_counter()
        r = simulate_kv_memory(trace, s, 15_000)
        print(f"  {s:18s} {r.utilization:7.1%} {r.reserved:7.1%} "
              f"{r.internal_fragmentation:7.1%} {r.external_fragmentation:7.1%} "
              f"{r.mean_batch:6.1f} {r.max_batch:4d} {r.preemptions:7d}  "
              f"({time.perf_counter() - t:.2f} s)")


def fidelity() -> None:
    x = synthetic_attention(prompt=1024, steps=64, heads=8, head_dim=64, seed=0)
    n = 1024 + 64
    print(f"\nPolicy fidelity: mean relative attention-output error over 64 decode steps "
          f"(prompt 1024, 8 heads x 64, seed 0)")
    print(f"  {'policy':10s}" + "".join(f"{f'{b} tok':>10s}" for b in (64, 128, 256, 512)))
    for name, extra in [("streaming", {}), ("h2o", {}), ("a2sf", {"forgetting": 0.95}),
                        ("snapkv", {"window": 32})]:
        row = [policy_fidelity(get_policy(name, budget=b, **extra), x)["mean_error"]
               for b in (64, 128, 256, 512)]
        print(f"  {name:10s}" + "".join(f"{e:10.4f}" for e in row))
    for bits in (2, 4, 8):
        e = policy_fidelity(get_policy("kivi", bits=bits), x)["mean_error"]
        print(f"  kivi-{bits}    {e:10.4f} (all {n} tokens, group 32, residual 128)")
    print(f"  full       {policy_fidelity(get_policy('full'), x)['mean_error']:10.2e}")
    print(f"  relay      {relay_error(get_policy('relay', system_len=512), x):10.2e} "
          "(merge of two flash2 passes vs float64)")


if __name__ == "__main__":
    parity()
    fragmentation()
    fidelity()
