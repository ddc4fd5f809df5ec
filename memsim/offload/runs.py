"""``memsim run`` for the offloading workload kinds ``offload_flexgen``, ``llm_in_flash`` and
``instinfer``: loaders (strict, from the run configuration's ``workload`` mapping) and simulate
functions returning a :class:`memsim.result.Result` with bytes per level (``ssd``, ``host`` /
``dram``, ``hbm``) and busy seconds of GPU, CPU, PCIe, SSD (``busy_s``). Schemas: docs/offload.md.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import __version__
from ..errors import InputError
from ..llm.model import ModelSpec, load_model
from ..result import LevelTraffic, Result
from ..spec import Node

__all__ = ["FlexGenWorkload", "LlmInFlashWorkload", "InstInferWorkload", "simulate_flexgen",
           "simulate_llm_in_flash", "simulate_instinfer", "levels_from_routes"]

_ROUTES = {"host>hbm": ("host", "hbm"), "hbm>host": ("hbm", "host"), "ssd>host": ("ssd", "host"),
           "host>ssd": ("host", "ssd"), "hbm>ssd": ("hbm", "ssd"), "ssd>hbm": ("ssd", "hbm"),
           "flash>csd": ("ssd", None), "ssd>dram": ("ssd", "dram")}


def levels_from_routes(hardware, routes: dict, peaks: dict | None = None) -> dict:
    """Per-level traffic: a route ``a>b`` reads ``a`` and writes ``b`` (``flash>csd``: the
    drive's engine reads flash). ``peaks`` maps level names to peak resident bytes."""
    counts = {lv.name: [0, 0] for lv in hardware.memories}
    for route, nbytes in routes.items():
        src, dst = _ROUTES[route]
        if src == "host" and "host" not in counts:
            src = "dram"
        if dst == "host" and "host" not in counts:
            dst = "dram"
        if src in counts:
            counts[src][0] += round(nbytes)
        if dst in counts:
            counts[dst][1] += round(nbytes)
    peaks = peaks or {}
    return {lv.name: LevelTraffic(counts[lv.name][0], counts[lv.name][1],
                                  round(peaks.get(lv.name, 0)), lv.total_capacity_bytes)
            for lv in hardware.memories}


def _model(node: Node) -> ModelSpec:
    try:
        return load_model(node.req("model", str))
    except InputError as exc:
        if getattr(exc, "file", None):
            raise
        raise node.error("model", str(exc)) from None


def _fractions(node: Node, key: str, default: tuple[float, float]) -> tuple[float, float]:
    sub = node.child(key, required=False)
    if sub is None:
        return default
    g = sub.opt("gpu", float, default[0], minimum=0.0, maximum=1.0)
    c = sub.opt("cpu", float, default[1], minimum=0.0, maximum=1.0)
    sub.opt("disk", float, None, minimum=0.0, maximum=1.0)    # implied: 1 - gpu - cpu
    sub.close()
    return g, c


# -- FlexGen -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FlexGenWorkload:
    """``kind: offload_flexgen``: model, prompt/generation lengths, a fixed policy or
    ``policy: search``, the host I/O path (request size, threads) and the search grid step."""

    model: ModelSpec
    prompt_len: int
    gen_len: int
    policy: Any = None              # a flexgen.Policy, or None = search
    io_chunk: int = 16 << 20
    io_threads: int = 4
    search_step: float = 0.1

    @classmethod
    def from_node(cls, node: Node) -> "FlexGenWorkload":
        from .flexgen import Policy
        node.opt("kind", ("offload_flexgen",))
        model = _model(node)
        prompt = node.req("prompt_len", int, minimum=1)
        gen = node.req("gen_len", int, minimum=1)
        policy = None
        if isinstance(node.data.get("policy"), dict):
            p = node.child("policy")
            wg, wc = _fractions(p, "weights", (1.0, 0.0))
            cg, cc = _fractions(p, "cache", (1.0, 0.0))
            hg, hc = _fractions(p, "activations", (1.0, 0.0))
            try:
                policy = Policy(p.req("gpu_batch", int, minimum=1),
                                p.opt("num_gpu_batches", int, 1, minimum=1), wg, wc, cg, cc,
                                hg, hc, p.opt("cpu_attention", bool, False))
            except InputError as exc:
                raise p.error(None, str(exc)) from None
            p.close()
        else:
            node.opt("policy", ("search",), "search")
        io = node.child("io", required=False)
        chunk, threads = 16 << 20, 4
        if io is not None:
            chunk = io.opt("chunk", "bytes", chunk, positive=True)
            threads = io.opt("threads", int, threads, minimum=1)
            io.close()
        step = node.opt("search_step", float, 0.1, positive=True, maximum=1.0)
        node.close()
        return cls(model, prompt, gen, policy, int(chunk), threads, step)

    def to_dict(self) -> dict:
        return {"kind": "offload_flexgen", "model": self.model.name,
                "prompt_len": self.prompt_len, "gen_len": self.gen_len,
                "policy": self.policy.to_dict() if self.policy else "search",
                "io": {"chunk": self.io_chunk, "threads": self.io_threads},
                "search_step": self.search_step}


def simulate_flexgen(cfg) -> Result:
    from .flexgen import FlexGenCosts
    from .flexgen_search import search_policy
    from .flexgen_sim import simulate_policy
    from .machine import OffloadMachine
    wl: FlexGenWorkload = cfg.workload
    machine = OffloadMachine.of(cfg.hardware)
    costs = FlexGenCosts.of(machine, wl.io_chunk, wl.io_threads)
    caps = {"gpu": machine.gpu.total_capacity_bytes, "host": machine.host.total_capacity_bytes,
            "disk": machine.disk_level.total_capacity_bytes if machine.disk_level else 0}
    search = None
    if wl.policy is None:
        search = search_policy(wl.model, costs, wl.prompt_len, wl.gen_len, caps, wl.search_step)
        run = search.best
    else:
        run = simulate_policy(wl.model, costs, wl.policy, wl.prompt_len, wl.gen_len, caps)
    peaks = {"hbm": run.peak_bytes["gpu"], machine.host.name: run.peak_bytes["host"],
             "ssd": run.peak_bytes["disk"]}
    sched = {"kind": "zigzag_block", **run.policy.to_dict(),
             "throughput_tokens_per_s": run.throughput,
             "decode_throughput_tokens_per_s": run.decode_throughput,
             "prefill_s": run.prefill_s, "decode_s": run.decode_s}
    if search is not None:
        sched["search"] = {"method": "exhaustive bound + branch-and-bound simulation",
                           "grid_points": search.evaluated, "feasible": search.feasible,
                           "simulated": search.simulated, "proven_on_grid": search.proven}
    flops = 2.0 * run.policy.block * wl.gen_len * wl.model.params() + 0.0
    return Result(__version__, cfg.hardware_name, wl.to_dict(), sched, run.time_s, flops,
                  levels_from_routes(cfg.hardware, dict(run.bytes), peaks),
                  busy_s=dict(run.busy_s),
                  simulation={"iterations": run.iterations})


# -- LLM in a flash ------------------------------------------------------------------------------

@dataclass(frozen=True)
class LlmInFlashWorkload:
    """``kind: llm_in_flash``: model, dtype (fp16 | fp32), techniques, reader threads, trace
    model targets and seed, optional compute rate and DRAM copy bandwidth."""

    model: ModelSpec
    dtype: str = "fp16"
    hybrid: bool = True
    predictor: bool = True
    window: int = 5
    bundling: bool = True
    threads: int = 32
    tokens: int = 24
    seed: int = 0
    targets: dict = field(default_factory=dict)
    compute_rate: float | None = None
    copy_bandwidth: float | None = None

    @classmethod
    def from_node(cls, node: Node) -> "LlmInFlashWorkload":
        from .neuron_trace import OPT_6_7B_TARGETS
        node.opt("kind", ("llm_in_flash",))
        model = _model(node)
        dtype = node.opt("dtype", ("fp16", "bf16", "fp32"), "fp16")
        t = node.child("techniques", required=False)
        tech = dict(hybrid=True, predictor=True, window=5, bundling=True)
        if t is not None:
            tech = dict(hybrid=t.opt("hybrid", bool, True), predictor=t.opt("predictor", bool, True),
                        window=t.opt("window", int, 5, minimum=0),
                        bundling=t.opt("bundling", bool, True))
            t.close()
        threads = node.opt("threads", int, 32, minimum=1)
        tr = node.child("trace", required=False)
        targets = {k: v for k, v in OPT_6_7B_TARGETS.items() if k != "window"}
        tokens, seed = 24, 0
        if tr is not None:
            tokens = tr.opt("tokens", int, tokens, minimum=2)
            seed = tr.opt("seed", int, seed)
            for k in ("mean_active", "resident", "new"):
                targets[k] = tr.opt(k, float, targets[k], positive=True, maximum=1.0)
            tr.close()
        rate = node.opt("compute_rate", "rate", None, positive=True)
        copy = node.opt("copy_bandwidth", "bandwidth", None, positive=True)
        node.close()
        return cls(model, dtype, tech["hybrid"], tech["predictor"], tech["window"],
                   tech["bundling"], threads, tokens, seed, targets, rate, copy)

    def to_dict(self) -> dict:
        return {"kind": "llm_in_flash", "model": self.model.name, "dtype": self.dtype,
                "techniques": {"hybrid": self.hybrid, "predictor": self.predictor,
                               "window": self.window, "bundling": self.bundling},
                "threads": self.threads, "trace": {"tokens": self.tokens, "seed": self.seed,
                                                   **self.targets}}


def simulate_llm_in_flash(cfg) -> Result:
    from ..dtypes import dtype_bytes
    from ..storage.device import StorageDevice
    from .llm_flash import FALCON_COPY_BANDWIDTH, Techniques, run_llm_in_flash
    from .neuron_trace import calibrate, generate
    wl: LlmInFlashWorkload = cfg.workload
    hw = cfg.hardware
    if not hw.has_memory("ssd"):
        raise InputError(f"hardware {hw.name!r} has no flash level 'ssd'")
    device = StorageDevice.from_level(hw.memory("ssd"))
    try:
        tech = Techniques(wl.hybrid, wl.predictor, wl.window, wl.bundling)
    except InputError as exc:
        raise InputError(f"workload.techniques: {exc}") from None
    trace = None
    if tech.predictor:
        tm = calibrate(wl.targets["mean_active"], wl.window or 5, wl.targets["resident"],
                       wl.targets["new"])
        trace = generate(tm, wl.model.layers, wl.model.ffn.size, wl.tokens, wl.seed)
    cost = run_llm_in_flash(wl.model, device, tech, trace, dtype_bytes(wl.dtype), wl.threads,
                            wl.copy_bandwidth or FALCON_COPY_BANDWIDTH, wl.compute_rate)
    host = "dram" if hw.has_memory("dram") else "host"
    levels = levels_from_routes(hw, {"ssd>host": cost.flash_bytes},
                                {host: cost.dram_bytes})
    sched = {"kind": "llm_in_flash", "chunk_bytes": cost.chunk_bytes,
             "reads_per_token": cost.requests, "io_s": cost.io_s, "mem_s": cost.mem_s,
             "compute_s": cost.compute_s, "flash_throughput": cost.throughput}
    return Result(__version__, cfg.hardware_name, wl.to_dict(), sched, cost.total_s, 0.0, levels,
                  busy_s={"ssd": cost.io_s, "cpu_memory_management": cost.mem_s,
                          "compute": cost.compute_s},
                  simulation={"per": "token (steady-state average)"})


# -- InstInfer -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class InstInferWorkload:
    """``kind: instinfer``: model, mode (instinfer | ssd_offload | gpu), batch, context,
    kv_fraction (SparF: 0.125)."""

    model: ModelSpec
    mode: str
    batch: int
    context: int
    kv_fraction: float = 1.0

    @classmethod
    def from_node(cls, node: Node) -> "InstInferWorkload":
        from .instinfer import MODES
        node.opt("kind", ("instinfer",))
        out = cls(_model(node), node.opt("mode", MODES, "instinfer"),
                  node.req("batch", int, minimum=1), node.req("context", int, minimum=1),
                  node.opt("kv_fraction", float, 1.0, positive=True, maximum=1.0))
        node.close()
        return out

    def to_dict(self) -> dict:
        return {"kind": "instinfer", "model": self.model.name, "mode": self.mode,
                "batch": self.batch, "context": self.context, "kv_fraction": self.kv_fraction}


def simulate_instinfer(cfg) -> Result:
    from .instinfer import decode_step
    from .machine import OffloadMachine
    wl: InstInferWorkload = cfg.workload
    step = decode_step(wl.model, OffloadMachine.of(cfg.hardware), wl.mode, wl.batch, wl.context,
                       kv_fraction=wl.kv_fraction)
    sched = {"kind": wl.mode, "throughput_tokens_per_s": step.throughput,
             "kv_fits_on_gpu": step.fits}
    return Result(__version__, cfg.hardware_name, wl.to_dict(), sched, step.time_s, 0.0,
                  levels_from_routes(cfg.hardware, step.bytes), busy_s=step.busy_s,
                  simulation={"per": "decode step"})
