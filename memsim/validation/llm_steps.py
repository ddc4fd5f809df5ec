"""Whole LLM steps measured on a GPU against memsim's LLM path (``llm_steps.json``).

The measurement (``validation/harness/llm_step.py``) runs a Llama-3-8B-shaped decoder with
random bf16 weights as CUDA graphs: decode steps (one new token per sequence at a given
context) and prefills, each once as plain PyTorch ("eager": one kernel or more per operator,
rotary as ten elementwise kernels) and, for some, with the elementwise work fused by
torch.compile ("compiled"). Each operator class of the eager step was also timed on its own
(a graph of that operator for all 32 layers). memsim predicts the same steps from the
``llama-3-8b`` model preset and the device's hardware preset with
:func:`memsim.llm.simulate.run_llm` (bf16 weights, KV cache and activations); nothing of this
data was used to calibrate anything.

Operator names are memsim's, except ``kv_write`` (the copy of the new K/V into the cache;
memsim's k/v projections write the cache directly, so it has no prediction) and
``final_norm+lm_head`` (the two timed together).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import InputError
from .data import DATA_DIR
from .mapping import device_profile

__all__ = ["LLM_STEPS_FILE", "LlmStepCase", "load_llm_steps", "compare_llm_steps",
           "llm_step_summary"]

LLM_STEPS_FILE = "llm_steps.json"
_SCHEMA = "memsim.llm_steps/1"
_CASE_FIELDS = {"id": str, "stage": str, "batch": int, "context": int, "new_tokens": int,
                "step_s": (int, float)}
_KIND_NAMES = {str: "a string", int: "an integer", (int, float): "a number"}
# measured operator classes that memsim does not have as an operator of its own
UNMODELLED_OPS = ("kv_write",)


@dataclass
class LlmStepCase:
    """One measured step and memsim's prediction of it (seconds)."""

    id: str
    stage: str                      # decode | prefill
    batch: int
    context: int                    # keys already in the cache (decode), 0 at prefill
    new_tokens: int                 # per sequence: 1 (decode) or the prompt length
    eager_s: float
    compiled_s: float | None
    predicted_s: float
    ops_measured_s: Mapping[str, float] = field(default_factory=dict)
    ops_predicted_s: Mapping[str, float | None] = field(default_factory=dict)

    @property
    def eager_err(self) -> float:
        return self.predicted_s / self.eager_s - 1.0

    @property
    def compiled_err(self) -> float | None:
        return None if self.compiled_s is None else self.predicted_s / self.compiled_s - 1.0

    def op_err(self, op: str) -> float | None:
        p, m = self.ops_predicted_s.get(op), self.ops_measured_s.get(op)
        return None if p is None or not m else p / m - 1.0


def load_llm_steps(device: str = "h100", path: str | Path | None = None) -> dict:
    """The committed ``llm_steps.json`` of ``device`` (or the file at ``path``), checked."""
    p = Path(path) if path is not None else DATA_DIR / device / LLM_STEPS_FILE
    if p.is_dir():
        p = p / LLM_STEPS_FILE
    if not p.is_file():
        known = sorted(d.name for d in DATA_DIR.iterdir() if (d / LLM_STEPS_FILE).is_file())
        raise InputError(f"no LLM step measurements at {p} (expected {LLM_STEPS_FILE} from "
                         f"validation/harness/llm_step.py; committed for: {', '.join(known)})")
    try:
        doc = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{p}: not valid JSON ({exc})") from None
    if not isinstance(doc, dict) or doc.get("schema") != _SCHEMA:
        raise InputError(f"{p}: expected schema {_SCHEMA!r}, got "
                         f"{doc.get('schema') if isinstance(doc, dict) else type(doc).__name__!r}")
    for key in ("model", "cases", "provenance"):
        if key not in doc:
            raise InputError(f"{p}: missing {key!r}")
    if not isinstance(doc["cases"], list) or not doc["cases"]:
        raise InputError(f"{p}: 'cases' must be a non-empty list")
    for i, c in enumerate(doc["cases"]):
        where = f"{p}: cases[{i}] ({c.get('id', '?') if isinstance(c, dict) else c!r})"
        if not isinstance(c, dict):
            raise InputError(f"{where}: expected a mapping")
        for key, kind in _CASE_FIELDS.items():
            v = c.get(key)
            if isinstance(v, bool) or not isinstance(v, kind):
                raise InputError(f"{where}: {key!r} must be {_KIND_NAMES[kind]}, got {v!r}")
        if c["stage"] not in ("decode", "prefill"):
            raise InputError(f"{where}: 'stage' must be 'decode' or 'prefill', "
                             f"got {c['stage']!r}")
        if c["step_s"] <= 0 or c["batch"] < 1 or c["new_tokens"] < 1 or c["context"] < 0:
            raise InputError(f"{where}: expected step_s > 0, batch >= 1, new_tokens >= 1 and "
                             "context >= 0")
    return doc


def _predict(case: Mapping[str, Any], model, hardware) -> tuple[float, dict]:
    from ..llm import LlmWorkload
    from ..llm.simulate import run_llm
    decode = case["stage"] == "decode"
    wl = LlmWorkload(model, batch=int(case["batch"]),
                     prompt_len=int(case["context"] if decode else case["new_tokens"]),
                     gen_len=1, weight_dtype="bf16", kv_dtype="bf16", act_dtype="bf16")
    r = run_llm(wl, hardware)
    if not r.simulated:
        raise InputError(f"hardware {hardware.name!r} cannot simulate the LLM operators")
    sims, costs = (r.decode_sim_s, r.decode_first) if decode else (r.prefill_sim_s, r.prefill)
    ops = {c.op.name: sims.get(c.op.name, c.time_s) * c.op.count for c in costs}
    ops["final_norm+lm_head"] = ops.pop("final_norm") + ops.pop("lm_head")
    total = r.sim_decode_time_s if decode else r.sim_prefill_time_s
    return total, ops


def compare_llm_steps(device: str = "h100", hardware: Any = None,
                      path: str | Path | None = None) -> list[LlmStepCase]:
    """Every measured step of ``device`` with memsim's prediction on ``hardware`` (default:
    the device's preset)."""
    from ..hardware import load_hardware
    from ..llm import load_model
    doc = load_llm_steps(device, path)
    hw = load_hardware(hardware if hardware is not None else device_profile(device).preset)
    name = doc["model"]["name"]
    model = load_model(name)
    compiled = {c["id"]: c["step_s"] for c in doc.get("compiled", ())}
    out = []
    for c in doc["cases"]:
        total, ops = _predict(c, model, hw)
        measured = dict(c.get("ops_s", {}))
        out.append(LlmStepCase(
            c["id"], c["stage"], int(c["batch"]), int(c["context"]), int(c["new_tokens"]),
            float(c["step_s"]), compiled.get(c["id"]), total, measured,
            {op: (None if op in UNMODELLED_OPS else ops.get(op)) for op in measured}))
    return out


def llm_step_summary(cases: list[LlmStepCase]) -> dict:
    """Per stage and implementation: number of cases, mean and max absolute error; per
    operator class and stage: mean absolute error (eager per-operator graphs)."""
    out: dict = {"steps": {}, "ops": {}}
    for stage in ("decode", "prefill"):
        sel = [c for c in cases if c.stage == stage]
        for impl, errs in (("eager", [c.eager_err for c in sel]),
                           ("compiled", [c.compiled_err for c in sel
                                         if c.compiled_err is not None])):
            if errs:
                out["steps"][(stage, impl)] = {
                    "n": len(errs), "mape": sum(map(abs, errs)) / len(errs),
                    "max": max(errs, key=abs)}
        for op in dict.fromkeys(op for c in sel for op in c.ops_measured_s):
            errs = [e for c in sel if (e := c.op_err(op)) is not None]
            if errs:
                out["ops"][(stage, op)] = {"n": len(errs),
                                           "mape": sum(map(abs, errs)) / len(errs),
                                           "max": max(errs, key=abs)}
    return out
