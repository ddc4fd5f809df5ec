"""Whole LLM forward steps on the GPU: a Llama-3-8B-shaped decoder (random bf16 weights, the
model's exact shapes) run as a CUDA graph, for decode steps and prefills, plus each operator
class on its own, so that memsim's LLM predictions (TPOT, prefill time, per operator) can be
checked against a real step and not only against single kernels.

What runs per layer is what a plain PyTorch implementation runs (Hugging Face's Llama layer,
unfused): RMSNorm (``F.rms_norm``), q/k/v projections (three GEMMs), rotary embedding on q and k,
the new token's K/V written into a preallocated cache, attention through SDPA's flash backend
with ``enable_gqa`` (FlashAttention-2; causal at prefill), the o projection, the residual add,
RMSNorm, gate and up projections, SiLU(gate) * up, the down projection and the residual add;
then the final RMSNorm and the LM head on the last position. Weights are distinct per layer
(7.5 G parameters, 16 GB), so each step streams them from HBM as a real one does.

Timing: each step is captured once as a CUDA graph (no CPU launch cost between kernels), then
replayed; the figure is the median of ``REPS`` replays timed with CUDA events. The operator
classes are captured the same way, one graph per class holding that operator for all 32
layers (their own weights and caches), so the sum over classes can be compared with the step.

    python3 llm_step.py OUT_JSON            # needs torch with CUDA; about a minute on an H100
    python3 llm_step.py profile OUT_JSON    # the kernels each operator class launches (eager)
"""
from __future__ import annotations

import json
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

MODEL = {"name": "llama-3-8b", "hidden": 4096, "layers": 32, "heads": 32, "kv_heads": 8,
         "head_dim": 128, "ffn": 14336, "vocab": 128256, "rope_theta": 500000.0,
         "eps": 1e-5}
DECODE = [(1, 1024), (1, 4096), (8, 2048), (16, 1024), (16, 2048), (32, 2048), (64, 1024)]
PREFILL = [(1, 512), (1, 2048), (4, 2048), (16, 1024)]
REPS = 20
OPS = ("attn_norm", "q_proj", "k_proj", "v_proj", "rotary", "kv_write", "attention", "o_proj",
       "attn_add", "mlp_norm", "gate_proj", "up_proj", "mlp_act", "down_proj", "mlp_add")


def profile_kernels(out_path, make_step, torch) -> int:
    """The kernels each operator class launches, eager (torch.profiler, CUDA activity): name,
    launches per layer and mean duration, for one decode and one prefill configuration."""
    from torch.profiler import ProfilerActivity, profile

    from provenance import collect
    out = {}
    for cid, (batch, n_new, ctx) in {"decode_b16_ctx2048": (16, 1, 2048),
                                      "prefill_b1_p2048": (1, 2048, 0)}.items():
        step, fns, head, caches, st = make_step(batch, n_new, ctx)
        step()
        torch.cuda.synchronize()
        ops = {}
        for op in OPS:
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                for i in range(MODEL["layers"]):
                    fns[op](i)
                torch.cuda.synchronize()
            kernels = []
            for e in prof.key_averages():
                t = getattr(e, "device_time_total", None)
                if t is None:
                    t = getattr(e, "cuda_time_total", 0.0)
                if e.count and t and str(getattr(e, "device_type", "")).endswith("CUDA"):
                    kernels.append({"name": e.key[:160], "per_layer": e.count / MODEL["layers"],
                                    "mean_s": t * 1e-6 / e.count})
            ops[op] = kernels
            print(cid, op, [(k["name"][:40], k["per_layer"]) for k in kernels], flush=True)
        out[cid] = ops
        del step, fns, head, caches, st
        torch.cuda.empty_cache()
    doc = {"schema": "memsim.llm_step_kernels/1", "provenance": {
        **collect(), "harness": "validation/harness/llm_step.py profile (eager, torch.profiler "
        "CUDA activity, one operator class at a time over the 32 layers)"}, "cases": out}
    with open(out_path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    return 0


COMPILED_DECODE = [(1, 1024), (16, 2048), (64, 1024)]
COMPILED_PREFILL = [(1, 2048), (16, 1024)]


def compiled_cases(torch, F, sdpa_kernel, SDPBackend, layers, embed, lm_head, final_norm,
                   rope_tables, rotate_half, graph_time) -> list:
    """The same steps with the elementwise work fused by torch.compile (Inductor): one compiled
    function from the layer's input to q, k, v (RMSNorm, projections, rotary), the K/V cache
    write and SDPA eager as above, one compiled function from the attention output to the
    layer's output (o projection, residual, RMSNorm, gate/up, SiLU * up, down, residual).
    GEMMs stay cuBLAS calls; the kernels each step launches are listed per layer."""
    from torch.profiler import ProfilerActivity, profile
    m = MODEL
    H, L, NH, NK, D = m["hidden"], m["layers"], m["heads"], m["kv_heads"], m["head_dim"]
    dev, bf = "cuda", torch.bfloat16
    out = []
    for stage, grid in (("decode", COMPILED_DECODE), ("prefill", COMPILED_PREFILL)):
        for batch, n in grid:
            n_new, ctx = (1, n) if stage == "decode" else (n, 0)
            T = ctx + n_new

            def pre(h, wq, wk, wv, n1, cos, sin, batch=batch, n_new=n_new):
                x = F.rms_norm(h, (H,), n1, m["eps"])
                q = (x @ wq.t()).view(batch, n_new, NH, D).transpose(1, 2)
                k = (x @ wk.t()).view(batch, n_new, NK, D).transpose(1, 2)
                v = (x @ wv.t()).view(batch, n_new, NK, D).transpose(1, 2)
                return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin, v

            def post(h, a, wo, wg, wu, wd, n2, batch=batch, n_new=n_new):
                h = h + a.transpose(1, 2).reshape(batch * n_new, NH * D) @ wo.t()
                x = F.rms_norm(h, (H,), n2, m["eps"])
                return h + (F.silu(x @ wg.t()) * (x @ wu.t())) @ wd.t()

            cpre = torch.compile(pre, fullgraph=True, dynamic=False)
            cpost = torch.compile(post, fullgraph=True, dynamic=False)
            caches = [(torch.empty(batch, NK, T, D, device=dev, dtype=bf).normal_(),
                       torch.empty(batch, NK, T, D, device=dev, dtype=bf).normal_())
                      for _ in range(L)]
            cos, sin = rope_tables(ctx, n_new)
            ids = torch.randint(0, m["vocab"], (batch, n_new), device=dev)
            st = {}

            def step():
                h = embed[ids].view(batch * n_new, H)
                for i in range(L):
                    w = layers[i]
                    kc, vc = caches[i]
                    q, k, v = cpre(h, w["wq"], w["wk"], w["wv"], w["n1"], cos, sin)
                    kc[:, :, ctx:T].copy_(k)
                    vc[:, :, ctx:T].copy_(v)
                    with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
                        a = F.scaled_dot_product_attention(q, kc[:, :, :T], vc[:, :, :T],
                                                           is_causal=n_new > 1,
                                                           enable_gqa=True)
                    h = cpost(h, a, w["wo"], w["wg"], w["wu"], w["wd"], w["n2"])
                last = h.view(batch, n_new, H)[:, -1]
                st["logits"] = F.rms_norm(last, (H,), final_norm, m["eps"]) @ lm_head.t()

            step()                          # compiles
            torch.cuda.synchronize()
            t, reps = graph_time(step)
            assert torch.isfinite(st["logits"]).all(), "non-finite logits (compiled)"
            with profile(activities=[ProfilerActivity.CUDA]) as prof:
                step()
                torch.cuda.synchronize()
            kernels = []
            for e in prof.key_averages():
                dt = getattr(e, "device_time_total", None)
                if dt is None:
                    dt = getattr(e, "cuda_time_total", 0.0)
                if e.count and dt and str(getattr(e, "device_type", "")).endswith("CUDA"):
                    kernels.append({"name": e.key[:160], "per_step": e.count,
                                    "mean_s": dt * 1e-6 / e.count})
            cid = (f"{stage}_b{batch}_ctx{ctx}" if stage == "decode"
                   else f"{stage}_b{batch}_p{n}")
            out.append({"id": cid, "stage": stage, "batch": batch, "context": ctx,
                        "new_tokens": n_new, "step_s": t, "step_reps_s": reps,
                        "kernels": kernels})
            print(f"compiled {cid:24s} step {t * 1e3:8.3f} ms, "
                  f"{sum(k['per_step'] for k in kernels)} kernels", flush=True)
            del caches, st
            torch._dynamo.reset()
            torch.cuda.empty_cache()
    return out


def main(out_path: str, mode: str = "time") -> int:
    import torch
    import torch.nn.functional as F
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from provenance import collect

    torch.manual_seed(0)
    dev, bf = "cuda", torch.bfloat16
    m = MODEL
    H, L, NH, NK, D, FF, V = (m["hidden"], m["layers"], m["heads"], m["kv_heads"],
                              m["head_dim"], m["ffn"], m["vocab"])

    def w(*shape):
        return torch.empty(*shape, device=dev, dtype=bf).normal_(0, 0.02)

    layers = [{"wq": w(NH * D, H), "wk": w(NK * D, H), "wv": w(NK * D, H), "wo": w(H, NH * D),
               "wg": w(FF, H), "wu": w(FF, H), "wd": w(H, FF),
               "n1": torch.ones(H, device=dev, dtype=bf),
               "n2": torch.ones(H, device=dev, dtype=bf)} for _ in range(L)]
    embed, lm_head = w(V, H), w(V, H)
    final_norm = torch.ones(H, device=dev, dtype=bf)
    inv = 1.0 / (m["rope_theta"] ** (torch.arange(0, D, 2, device=dev).float() / D))

    def rope_tables(pos0: int, n: int):
        t = torch.arange(pos0, pos0 + n, device=dev).float()
        f = torch.outer(t, inv)
        emb = torch.cat((f, f), dim=-1)
        return emb.cos().to(bf)[None, None], emb.sin().to(bf)[None, None]

    def rotate_half(x):
        x1, x2 = x[..., : D // 2], x[..., D // 2:]
        return torch.cat((-x2, x1), dim=-1)

    def make_step(batch: int, n_new: int, ctx: int):
        """Tensors and per-operator closures of one step: ``n_new`` new tokens per sequence
        (1 = decode) appended at position ``ctx`` of each layer's cache."""
        T = ctx + n_new
        caches = [(torch.empty(batch, NK, T, D, device=dev, dtype=bf).normal_(),
                   torch.empty(batch, NK, T, D, device=dev, dtype=bf).normal_())
                  for _ in range(L)]
        cos, sin = rope_tables(ctx, n_new)
        ids = torch.randint(0, V, (batch, n_new), device=dev)
        st = {"h": embed[ids].view(batch * n_new, H).clone()}
        causal = n_new > 1

        def attn_norm(i):
            st["x"] = F.rms_norm(st["h"], (H,), layers[i]["n1"], m["eps"])

        def q_proj(i):
            st["q"] = st["x"] @ layers[i]["wq"].t()

        def k_proj(i):
            st["k"] = st["x"] @ layers[i]["wk"].t()

        def v_proj(i):
            st["v"] = st["x"] @ layers[i]["wv"].t()

        def rotary(i):
            q = st["q"].view(batch, n_new, NH, D).transpose(1, 2)
            k = st["k"].view(batch, n_new, NK, D).transpose(1, 2)
            st["qr"] = q * cos + rotate_half(q) * sin
            st["kr"] = k * cos + rotate_half(k) * sin

        def kv_write(i):
            kc, vc = caches[i]
            kc[:, :, ctx:T].copy_(st["kr"])
            vc[:, :, ctx:T].copy_(st["v"].view(batch, n_new, NK, D).transpose(1, 2))

        def attention(i):
            kc, vc = caches[i]
            with sdpa_kernel([SDPBackend.FLASH_ATTENTION]):
                a = F.scaled_dot_product_attention(st["qr"], kc[:, :, :T], vc[:, :, :T],
                                                   is_causal=causal, enable_gqa=True)
            st["a"] = a.transpose(1, 2).reshape(batch * n_new, NH * D)

        def o_proj(i):
            st["o"] = st["a"] @ layers[i]["wo"].t()

        def attn_add(i):
            st["h"] = st["h"] + st["o"]

        def mlp_norm(i):
            st["x"] = F.rms_norm(st["h"], (H,), layers[i]["n2"], m["eps"])

        def gate_proj(i):
            st["g"] = st["x"] @ layers[i]["wg"].t()

        def up_proj(i):
            st["u"] = st["x"] @ layers[i]["wu"].t()

        def mlp_act(i):
            st["act"] = F.silu(st["g"]) * st["u"]

        def down_proj(i):
            st["o"] = st["act"] @ layers[i]["wd"].t()

        def mlp_add(i):
            st["h"] = st["h"] + st["o"]

        fns = dict(zip(OPS, (attn_norm, q_proj, k_proj, v_proj, rotary, kv_write, attention,
                             o_proj, attn_add, mlp_norm, gate_proj, up_proj, mlp_act,
                             down_proj, mlp_add)))

        def head():
            last = st["h"].view(batch, n_new, H)[:, -1]
            st["logits"] = F.rms_norm(last, (H,), final_norm, m["eps"]) @ lm_head.t()

        def step():
            st["h"] = embed[ids].view(batch * n_new, H)
            for i in range(L):
                for op in OPS:
                    fns[op](i)
            head()

        return step, fns, head, caches, st

    def graph_time(fn) -> tuple[float, list]:
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(2):
                fn()
        torch.cuda.current_stream().wait_stream(s)
        g = torch.cuda.CUDAGraph()
        with torch.cuda.graph(g):
            fn()
        for _ in range(3):
            g.replay()
        times = []
        for _ in range(REPS):
            a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            a.record()
            g.replay()
            b.record()
            b.synchronize()
            times.append(a.elapsed_time(b) * 1e-3)
        del g
        return statistics.median(times), times

    if mode == "profile":
        return profile_kernels(out_path, make_step, torch)

    cases = []
    for stage, grid in (("decode", DECODE), ("prefill", PREFILL)):
        for batch, n in grid:
            n_new, ctx = (1, n) if stage == "decode" else (n, 0)
            step, fns, head, caches, st = make_step(batch, n_new, ctx)
            t, reps = graph_time(step)
            assert torch.isfinite(st["logits"]).all(), f"{stage} b{batch} n{n}: non-finite logits"
            ops = {}
            for op in OPS:
                ops[op] = graph_time(lambda op=op: [fns[op](i) for i in range(L)])[0]
            ops["final_norm+lm_head"] = graph_time(head)[0]
            cid = (f"{stage}_b{batch}_ctx{ctx}" if stage == "decode"
                   else f"{stage}_b{batch}_p{n}")
            cases.append({"id": cid, "stage": stage, "batch": batch,
                          "context": ctx, "new_tokens": n_new, "step_s": t,
                          "step_reps_s": reps, "ops_s": ops,
                          "ops_sum_s": sum(ops.values())})
            print(f"{cid:24s} step {t * 1e3:8.3f} ms   sum of op graphs "
                  f"{sum(ops.values()) * 1e3:8.3f} ms", flush=True)
            del step, fns, head, caches, st
            torch.cuda.empty_cache()

    compiled = compiled_cases(torch, F, sdpa_kernel, SDPBackend, layers, embed, lm_head,
                              final_norm, rope_tables, rotate_half, graph_time)
    doc = {"schema": "memsim.llm_steps/1",
           "provenance": {**collect(), "harness": "validation/harness/llm_step.py (CUDA graph "
                          "per step and per operator class, median of %d replays, CUDA events)"
                          % REPS},
           "model": MODEL, "ops": list(OPS) + ["final_norm+lm_head"],
           "api": {"norm": "torch.nn.functional.rms_norm", "linear": "x @ W.t() (cuBLAS)",
                   "attention": "F.scaled_dot_product_attention, SDPBackend.FLASH_ATTENTION, "
                                "enable_gqa=True, is_causal at prefill, K/V cache slices",
                   "rotary": "q*cos + rotate_half(q)*sin (Hugging Face), q and k",
                   "kv_write": "copy_ of the new K (rotated) and V into the cache"},
           "cases": cases, "compiled": compiled}
    with open(out_path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"{len(cases)} cases -> {out_path}")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "profile":
        sys.exit(main(sys.argv[2], "profile"))
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "llm_steps.json"))
