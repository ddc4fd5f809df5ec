"""Time per output token and decode tokens/s of an LLM on h100-sxm with and without KV-cache
policies (roofline and engine-simulated), printed as a table for docs/llm.md.

    python benchmarks/llm_kv_policy_decode.py [model] [batch] [prompt_len] [gen_len]
"""
from __future__ import annotations

import sys
import time

from memsim.hardware import load_hardware
from memsim.llm import LlmWorkload, load_model, run_llm
from memsim.llm.kv_policies import get_policy

POLICIES = [("none", None), ("streaming 512", ("streaming", {"budget": 512})),
            ("h2o 512", ("h2o", {"budget": 512})), ("a2sf 512", ("a2sf", {"budget": 512})),
            ("snapkv 512", ("snapkv", {"budget": 512})),
            ("kivi 2-bit", ("kivi", {"bits": 2})), ("kivi 4-bit", ("kivi", {"bits": 4})),
            ("relay sys 1024", ("relay", {"system_len": 1024}))]


def main(argv: list[str]) -> None:
    model = argv[0] if argv else "llama-3-8b"
    defaults = [16, 2048, 256]                  # batch, prompt_len, gen_len; give a prefix
    batch, prompt, gen = [int(a) for a in argv[1:4]] + defaults[len(argv[1:4]):]
    hw = load_hardware("h100-sxm")
    m = load_model(model)
    print(f"{model} on h100-sxm, batch {batch}, prompt {prompt}, gen {gen}, fp16")
    print(f"{'policy':16s} {'KV GiB':>7s} {'KV MB/step':>10s} {'TPOT roof':>10s} "
          f"{'TPOT sim':>9s} {'tok/s roof':>10s} {'tok/s sim':>10s}")
    for label, spec in POLICIES:
        pol = get_policy(spec[0], **spec[1]) if spec else None
        wl = LlmWorkload(m, batch=batch, prompt_len=prompt, gen_len=gen, kv_policy=pol)
        t0 = time.perf_counter()
        r = run_llm(wl, hw)
        t = r.totals()
        kv_step = sum(c.op.kv_read_bytes * c.op.count for c in r.decode_first
                      if c.op.kind == "attention")
        sim = t.get("simulated", {})
        print(f"{label:16s} {r.footprint.kv_cache / 2**30:7.2f} {kv_step / 1e6:10.1f} "
              f"{t['decode']['tpot_mean_s'] * 1e3:8.3f}ms "
              f"{sim.get('decode_s', float('nan')) / gen * 1e3:7.3f}ms "
              f"{t['decode']['tokens_per_s']:10.0f} {sim.get('tokens_per_s', float('nan')):10.0f}"
              f"   ({time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    main(sys.argv[1:])
