"""LLM inference: model presets, prefill/decode operator expansion, roofline, footprint,
KV-cache memory management and KV-cache policies (docs/llm.md).

    from memsim.llm import load_model, LlmWorkload, run_llm
    from memsim.hardware import load_hardware
    report = run_llm(LlmWorkload(load_model("llama-3-8b"), batch=8, prompt_len=2048),
                     load_hardware("h100-sxm"))
    print(report.to_table())

``memsim.llm.kv_fidelity`` (numba numerics) is imported on demand, not here.
"""
from .analysis import LlmReport, analyse
from .footprint import Footprint, check_fits, footprint, weight_bytes
from .kv_memory import KvMemoryReport, simulate_kv_memory
from .kv_policies import get_policy, policy_from_data, policy_names, register_policy
from .model import FfnSpec, ModelSpec, load_model, model_from_data, model_names
from .operators import Operator, decode_operators, prefill_operators
from .roofline import OpCost, RooflineMachine, roofline, stage_totals
from .simulate import LlmResult, run_llm, simulate_llm
from .trace import TraceSpec, load_trace, trace_from_data
from .workload import LlmWorkload, WeightQuant

__all__ = ["FfnSpec", "ModelSpec", "load_model", "model_from_data", "model_names",
           "LlmWorkload", "WeightQuant", "Operator", "prefill_operators", "decode_operators",
           "RooflineMachine", "OpCost", "roofline", "stage_totals", "Footprint", "footprint",
           "check_fits", "weight_bytes", "LlmReport", "analyse", "LlmResult", "run_llm",
           "simulate_llm", "KvMemoryReport", "simulate_kv_memory", "TraceSpec", "load_trace",
           "trace_from_data", "get_policy", "policy_from_data", "policy_names",
           "register_policy"]
