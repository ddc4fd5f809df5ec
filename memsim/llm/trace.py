"""Synthetic request traces: prompt and output lengths drawn from distributions in YAML.

    version: 1
    requests: 1000
    seed: 0
    max_len: 2048                  # prompt + output is capped here (the model's context)
    parallel_samples: 1            # outputs per prompt (they can share the prompt's KV blocks)
    prompt: {dist: lognormal, mean: 161, sigma: 1.0, min: 1, max: 1024}
    output: {dist: lognormal, mean: 338, sigma: 1.0, min: 1}

Distributions: ``constant`` (``value``), ``uniform`` (``low``, ``high`` inclusive), ``normal``
(``mean``, ``std``), ``lognormal`` (``mean`` of the lengths and ``sigma`` of their log:
``mu = ln(mean) - sigma²/2``), ``choice`` (``values``, optional ``weights``). Every draw is
rounded and clipped to ``[min, max]`` (default ``[1, max_len - 1]``). One numpy
``default_rng(seed)`` per trace: the same file gives the same lengths.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..spec import Node, document_from_data, load_document

__all__ = ["LengthDist", "TraceSpec", "load_trace", "trace_from_data"]

_DISTS = ("constant", "uniform", "normal", "lognormal", "choice")


@dataclass(frozen=True)
class LengthDist:
    """A distribution of token counts."""

    dist: str
    params: tuple[tuple[str, Any], ...]
    low: int = 1
    high: int | None = None

    def sample(self, rng: np.random.Generator, n: int, high: int) -> np.ndarray:
        p = dict(self.params)
        if self.dist == "constant":
            x = np.full(n, float(p["value"]))
        elif self.dist == "uniform":
            x = rng.integers(p["low"], p["high"] + 1, n).astype(float)
        elif self.dist == "normal":
            x = rng.normal(p["mean"], p["std"], n)
        elif self.dist == "lognormal":
            mu = math.log(p["mean"]) - p["sigma"] ** 2 / 2
            x = rng.lognormal(mu, p["sigma"], n)
        else:
            w = np.asarray(p.get("weights") or [1.0] * len(p["values"]), float)
            x = rng.choice(np.asarray(p["values"], float), n, p=w / w.sum())
        top = min(self.high, high) if self.high is not None else high
        return np.clip(np.rint(x), self.low, top).astype(np.int64)


@dataclass(frozen=True)
class TraceSpec:
    """How to draw a trace: request count, seed, length distributions, parallel samples."""

    requests: int
    prompt: LengthDist
    output: LengthDist
    max_len: int
    seed: int = 0
    parallel_samples: int = 1

    def draw(self) -> tuple[np.ndarray, np.ndarray]:
        """(prompt_lens, output_lens) with ``prompt + output <= max_len``; outputs are drawn
        per sample: shape ``(requests, parallel_samples)``."""
        rng = np.random.default_rng(self.seed)
        prompts = self.prompt.sample(rng, self.requests, self.max_len - 1)
        outputs = self.output.sample(rng, self.requests * self.parallel_samples, self.max_len)
        outputs = outputs.reshape(self.requests, self.parallel_samples)
        outputs = np.minimum(outputs, (self.max_len - prompts)[:, None])
        return prompts, np.maximum(outputs, 1)


def _dist(node: Node) -> LengthDist:
    kind = node.req("dist", _DISTS)
    if kind == "constant":
        params = {"value": node.req("value", int, minimum=1)}
    elif kind == "uniform":
        params = {"low": node.req("low", int, minimum=1), "high": node.req("high", int,
                                                                            minimum=1)}
        if params["high"] < params["low"]:
            raise node.error("high", f"found {params['high']}, expected >= low "
                                     f"({params['low']})")
    elif kind == "normal":
        params = {"mean": node.req("mean", float, positive=True),
                  "std": node.req("std", float, nonnegative=True)}
    elif kind == "lognormal":
        params = {"mean": node.req("mean", float, positive=True),
                  "sigma": node.req("sigma", float, nonnegative=True)}
    else:
        values = node.req("values", list)
        if not values or not all(isinstance(v, int) and v >= 1 for v in values):
            raise node.error("values", f"found {values!r}, expected a list of integers >= 1")
        weights = node.opt("weights", list, None)
        if weights is not None and (len(weights) != len(values)
                                    or not all(isinstance(w, (int, float)) and w >= 0
                                               for w in weights) or not sum(weights) > 0):
            raise node.error("weights", "expected one non-negative number per value, not all 0")
        params = {"values": tuple(values), "weights": tuple(weights) if weights else None}
    low = node.opt("min", int, 1, minimum=1)
    high = node.opt("max", int, None, minimum=1)
    node.close()
    return LengthDist(kind, tuple(params.items()), low, high)


def _from_node(root: Node) -> TraceSpec:
    root.opt("version", (1,), 1)
    root.opt("description", str)
    spec = TraceSpec(requests=root.req("requests", int, minimum=1),
                     prompt=_dist(root.child("prompt")), output=_dist(root.child("output")),
                     max_len=root.req("max_len", int, minimum=2),
                     seed=root.opt("seed", int, 0, minimum=0),
                     parallel_samples=root.opt("parallel_samples", int, 1, minimum=1))
    root.close()
    return spec


def load_trace(path: "str | Path") -> TraceSpec:
    """A trace description from a YAML file (strict: unknown keys are errors)."""
    return _from_node(load_document(path).root("a request trace"))


def trace_from_data(data: dict, name: str = "<trace>") -> TraceSpec:
    """A trace description from plain data."""
    return _from_node(document_from_data(data, name).root("a request trace"))
