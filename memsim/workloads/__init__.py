"""Workload definitions (attention, GEMM, LLM models) and their masks.

Workload kinds are registered by name in :mod:`memsim.workloads.registry`; a run
configuration's ``workload.kind`` is looked up there.
"""
from .attention import AttentionWorkload, BlockSparse
from .gemm import GemmWorkload
from .registry import WorkloadKind, get_workload_kind, register_workload, workload_kinds

__all__ = ["AttentionWorkload", "BlockSparse", "GemmWorkload", "WorkloadKind",
           "get_workload_kind", "register_workload", "workload_kinds"]

register_workload("attention", AttentionWorkload.from_node, "memsim.simulate:simulate_tiled",
                  description="multi-head / GQA attention forward pass")
register_workload("gemm", GemmWorkload.from_node, "memsim.simulate:simulate_tiled",
                  description="dense matrix multiplication C = A·B")
register_workload("llm", "memsim.llm.workload:LlmWorkload.from_node",  # (llm engineer)
                  "memsim.llm.simulate:simulate_llm", needs_schedule=False,
                  description="LLM prefill + decode (memsim.llm)")
register_workload("sdpa_stream",  # (dataflow engineer)
                  "memsim.dataflow.workload:SdpaStreamWorkload.from_node",
                  "memsim.dataflow.workload:simulate_sdpa_stream", needs_schedule=False,
                  description="one SDPA head on a streaming dataflow fabric (memsim.dataflow)")
for _kind, _what in (("offload_flexgen", "FlexGen"), ("llm_in_flash", "LlmInFlash"),  # (offload)
                     ("instinfer", "InstInfer")):
    register_workload(_kind, f"memsim.offload.runs:{_what}Workload.from_node",
                      f"memsim.offload.runs:simulate_{_kind.removeprefix('offload_')}",
                      needs_schedule=False, description=f"offloading: {_what} (memsim.offload)")
