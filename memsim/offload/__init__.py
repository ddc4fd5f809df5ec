"""Offloading across GPU memory, host memory and flash: FlexGen-style placement and zig-zag
block schedule with a policy search, LLM in a flash (sparse FFN neurons on flash, windowing,
bundling), and in-storage attention (InstInfer). See docs/offload.md."""
from .flexgen import FlexGenCosts, Policy, iteration_chains
from .flexgen_search import SearchResult, search_policy
from .flexgen_sim import FlexGenRun, peak_memory, simulate_policy
from .instinfer import crossover_context, decode_step
from .llm_flash import Techniques, run_llm_in_flash
from .machine import OffloadMachine
from .neuron_trace import TraceModel, calibrate, generate

__all__ = ["Policy", "FlexGenCosts", "iteration_chains", "search_policy", "SearchResult",
           "simulate_policy", "FlexGenRun", "peak_memory", "decode_step", "crossover_context",
           "Techniques", "run_llm_in_flash", "OffloadMachine", "TraceModel", "calibrate",
           "generate"]
