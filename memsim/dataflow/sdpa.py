"""Scaled dot-product attention (one head) on a streaming dataflow fabric.

After Sohn, Zhang, Olukotun, "Implementing and Optimizing the Scaled Dot-Product Attention on
Streaming Dataflow" (arXiv:2404.16629). For each query row q_i the keys stream past in blocks
of ``lanes`` keys per token (``T = ceil(N / lanes)`` tokens per row):

naive      s = K_blk q / sqrt(d) -> exp -> { rowsum (reduce) -> repeat -> divide ;
                                           { FIFO exp->div ------------------> divide }
           -> matvec-accumulate with V -> out.
           The divide needs the row's sum, known only after the row's last score, so the whole
           row of exp'd scores (N elements, T entries) waits in the FIFO ``exp->div``: O(N).
reordered  s -> running max (scan) -> p = exp(s - m), c = exp(m_prev - m) ->
           l = l c + sum p (accumulate), o = o c + p V_blk (matvec-accumulate) -> out = o / l.
           The division is deferred to one per row (online softmax): O(1) buffering.

Tokens are vectors (``lanes`` scores, or ``lanes`` key vectors of ``d`` elements), one per cycle
per channel: the fabric is ``lanes`` wide, so this is exactly its timing, with N^2 / lanes
firings per unit instead of N^2.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError
from ..hardware.model import FabricSpec
from .fabric import Fabric, FabricRun
from .units import MatVec, Map, Reduce, Repeat, Scan, Sink, Source

__all__ = ["SdpaParams", "SdpaRun", "VARIANTS", "build_sdpa", "run_sdpa", "reference_attention",
           "make_inputs", "BUFFER_CHANNEL"]

VARIANTS = ("naive", "reordered")
BUFFER_CHANNEL = "exp->div"
"""The naive version's row buffer: the FIFO that must hold a whole row of exp'd scores."""


@dataclass(frozen=True)
class SdpaParams:
    """One attention head: ``seq`` keys (and queries unless ``seq_q``), ``head_dim`` d.

    ``lanes``: scores per token (the fabric's vector width; default the fabric's channel width).
    ``buffer_depth``: entries of the naive row buffer (default: one row plus the latency of
    the sum's loop, enough for full throughput). ``depths``: per-channel depth overrides.
    """

    seq: int
    head_dim: int
    variant: str = "reordered"
    lanes: int | None = None
    seq_q: int | None = None
    buffer_depth: int | None = None
    depths: dict = field(default_factory=dict)
    seed: int = 0

    def __post_init__(self):
        for name in ("seq", "head_dim"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise InputError(f"sdpa_stream: {name} must be a positive integer, got {value!r}")
        for name in ("lanes", "seq_q", "buffer_depth"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise InputError(f"sdpa_stream: {name} must be a positive integer, got {value!r}")
        if self.variant not in VARIANTS:
            raise InputError(f"sdpa_stream: variant {self.variant!r}, expected one of: "
                             f"{', '.join(VARIANTS)}")


@dataclass
class SdpaRun:
    """An SDPA run: outputs, timing and FIFO statistics, with the figures of merit."""

    params: SdpaParams
    lanes: int
    tokens_per_row: int
    fabric: FabricRun
    output: np.ndarray = field(repr=False)
    bottleneck_cycles: int

    @property
    def cycles(self) -> int:
        return self.fabric.cycles

    @property
    def rows(self) -> int:
        return self.output.shape[0]

    @property
    def ideal_cycles(self) -> int:
        """Cycles at the fabric's peak: one token per bottleneck-unit firing, no fill."""
        return self.rows * self.tokens_per_row * self.bottleneck_cycles

    @property
    def peak_fraction(self) -> float:
        """Achieved throughput as a fraction of the fabric's peak."""
        return self.ideal_cycles / self.cycles

    @property
    def scores_per_cycle(self) -> float:
        return self.rows * self.params.seq / self.cycles

    @property
    def outputs_per_cycle(self) -> float:
        """Output rows (d-vectors) per cycle."""
        return self.rows / self.cycles

    @property
    def peak_outputs_per_cycle(self) -> float:
        return 1.0 / (self.tokens_per_row * self.bottleneck_cycles)

    def intermediate_peak_elements(self) -> int:
        return self.fabric.intermediate_peak_elements()

    def max_fifo(self) -> tuple[str, int]:
        """The intermediate FIFO with the largest peak occupancy, and that peak (elements)."""
        name, stats = max(((n, c) for n, c in self.fabric.channels.items() if c["intermediate"]),
                          key=lambda item: item[1]["peak_elements"])
        return name, stats["peak_elements"]


def make_inputs(params: SdpaParams) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Q (seq_q x d), K, V (seq x d), standard normal float64 from ``params.seed``."""
    rng = np.random.default_rng(params.seed)
    seq_q = params.seq_q or params.seq
    q = rng.standard_normal((seq_q, params.head_dim))
    k = rng.standard_normal((params.seq, params.head_dim))
    v = rng.standard_normal((params.seq, params.head_dim))
    return q, k, v


def reference_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    """softmax(q k^T / sqrt(d)) v in numpy (max-subtracted softmax)."""
    s = q @ k.T / math.sqrt(q.shape[1])
    p = np.exp(s - s.max(axis=1, keepdims=True))
    return (p / p.sum(axis=1, keepdims=True)) @ v


def _row_stream(blocks: list, rows: int):
    for _ in range(rows):
        yield from blocks


def build_sdpa(spec: FabricSpec | None, params: SdpaParams, q, k, v) -> tuple[Fabric, int, list]:
    """Build the SDPA graph on a new Fabric. Returns (fabric, lanes, per-token units)."""
    lanes = params.lanes or (spec.channel.width if spec else 1)
    n, d = params.seq, params.head_dim
    rows = q.shape[0]
    t_row = math.ceil(n / lanes)
    f = Fabric(spec)
    env = f.env
    depth = params.depths.get
    k_blocks = [k[j * lanes:(j + 1) * lanes] for j in range(t_row)]
    v_blocks = [v[j * lanes:(j + 1) * lanes] for j in range(t_row)]

    def ch(name, elements, intermediate=True, slack=0):
        return f.channel(name, elements, depth=depth(name), intermediate=intermediate,
                         slack=slack)

    c_q = ch("q->qk", d, intermediate=False)
    c_k = ch("k->qk", lanes * d, intermediate=False)
    c_v = ch("v->pv", lanes * d, intermediate=False)
    f.add(Source(env, "q_src", f.timing("source"), d, iter(q), [c_q]))
    f.add(Source(env, "k_src", f.timing("source"), lanes, _row_stream(k_blocks, rows), [c_k]))
    f.add(Source(env, "v_src", f.timing("source"), lanes, _row_stream(v_blocks, rows), [c_v]))
    scale = 1.0 / math.sqrt(d)
    t_exp, t_red, t_scan = f.timing("exp"), f.timing("reduce"), f.timing("scan")
    t_div, t_mv, t_rep = f.timing("divide"), f.timing("matvec"), f.timing("repeat")
    lat = spec.channel.latency_cycles if spec else 1

    if params.variant == "naive":
        c_s = ch("qk->exp", lanes)
        c_p_sum = ch("exp->rowsum", lanes)
        # exp -> rowsum -> repeat -> div: cycles between the row's last exp and its first divide
        loop = t_exp.latency + t_red.latency + t_rep.latency + 3 * lat + 2
        c_p_buf = f.channel(BUFFER_CHANNEL, lanes,
                            depth=depth(BUFFER_CHANNEL, params.buffer_depth or t_row + loop))
        c_l = ch("rowsum->repeat", 1)
        c_l_rep = ch("repeat->div", 1)
        c_a = ch("div->pv", lanes)
        c_o = ch("pv->out", d, intermediate=False)
        units = [
            MatVec(env, "qk", t_mv, lanes, t_row, c_q, c_k, [c_s], scale=scale),
            Map(env, "exp", t_exp, lanes, np.exp, [c_s], [c_p_sum, c_p_buf], kind="exp"),
            Reduce(env, "rowsum", t_red, lanes, t_row, lambda acc, p: acc + p.sum(),
                   lambda: 0.0, [c_p_sum], [c_l]),
            Repeat(env, "repeat", t_rep, 1, t_row, c_l, [c_l_rep]),
            Map(env, "div", t_div, lanes, np.divide, [c_p_buf, c_l_rep], [c_a], kind="divide"),
            Reduce(env, "pv", t_mv, lanes, t_row, lambda acc, a, vb: acc + a @ vb,
                   lambda: np.zeros(d), [c_a, c_v], [c_o], kind="matvec"),
        ]
    else:
        skew = t_scan.latency + lat                # s waits for its running max
        c_s_max = ch("qk->rowmax", lanes)
        c_s_exp = ch("qk->exp", lanes, slack=skew)
        c_m_exp = ch("rowmax->exp", 2)
        c_m_c = ch("rowmax->rescale", 2)
        c_p_sum, c_p_pv = ch("exp->rowsum", lanes), ch("exp->pv", lanes)
        c_c_sum, c_c_pv = ch("rescale->rowsum", 1), ch("rescale->pv", 1)
        c_l = ch("rowsum->div", 1)
        c_o = ch("pv->div", d)
        c_out = ch("div->out", d, intermediate=False)
        units = [
            MatVec(env, "qk", t_mv, lanes, t_row, c_q, c_k, [c_s_max, c_s_exp], scale=scale),
            # running max: emits (previous max, new max) for the rescale factor
            Scan(env, "rowmax", t_scan, lanes, t_row, lambda m, s: max(m, s.max()),
                 lambda: -math.inf, lambda prev, m: (prev, m), [c_s_max], [c_m_exp, c_m_c]),
            Map(env, "exp", t_exp, lanes, lambda s, mm: np.exp(s - mm[1]), [c_s_exp, c_m_exp],
                [c_p_sum, c_p_pv], kind="exp"),
            Map(env, "rescale", t_exp, 1, lambda mm: math.exp(mm[0] - mm[1]), [c_m_c],
                [c_c_sum, c_c_pv], kind="exp"),
            Reduce(env, "rowsum", t_red, lanes, t_row, lambda acc, p, c: acc * c + p.sum(),
                   lambda: 0.0, [c_p_sum, c_c_sum], [c_l]),
            Reduce(env, "pv", t_mv, lanes, t_row, lambda acc, p, c, vb: acc * c + p @ vb,
                   lambda: np.zeros(d), [c_p_pv, c_c_pv, c_v], [c_o], kind="matvec"),
            Map(env, "div", t_div, d, np.divide, [c_o, c_l], [c_out], kind="divide"),
        ]
        c_o = c_out
    for unit in units:
        f.add(unit)
    f.add(Sink(env, "out", f.timing("sink"), d, c_o, expected=rows))
    per_token_names = (("qk", "exp", "rowsum", "repeat", "div", "pv") if params.variant == "naive"
                       else ("qk", "rowmax", "exp", "rescale", "rowsum", "pv"))
    per_token = [f.units[name] for name in per_token_names + ("k_src", "v_src")]
    return f, lanes, per_token


def run_sdpa(spec: FabricSpec | None, params: SdpaParams, max_cycles: int | None = None,
             inputs: tuple | None = None) -> SdpaRun:
    """Build and run one SDPA head; raises ``DeadlockError`` if a FIFO is too shallow."""
    q, k, v = inputs if inputs is not None else make_inputs(params)
    fabric, lanes, per_token = build_sdpa(spec, params, q, k, v)
    run = fabric.run(max_cycles=max_cycles)
    output = np.stack(run.outputs["out"]) if run.outputs["out"] else np.zeros((0, params.head_dim))
    return SdpaRun(params=params, lanes=lanes, tokens_per_row=math.ceil(params.seq / lanes),
                   fabric=run, output=output,
                   bottleneck_cycles=max(u.cycles for u in per_token))
