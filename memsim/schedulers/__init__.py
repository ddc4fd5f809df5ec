"""Schedules: tile programs for attention and GEMM, registered by name.

    from memsim.schedulers import get_schedule
    sched = get_schedule("flash2").from_dict({"block_q": 128}, workload, hardware)
    sched.resolved()   # {"kind": "flash2", "block_q": 128, "block_k": 128, ...}
    sched.kernels()    # the program for memsim.engine.simulate_program
"""
from .base import (Schedule, default_instruction, get_schedule, register_schedule,
                   schedule_names)
from .attention import Chunked, Flash1, Flash2, FlashDecoding, SquareTiling, Standard
from .gemm import GemmTiled

__all__ = ["Schedule", "get_schedule", "register_schedule", "schedule_names",
           "default_instruction", "Standard", "Flash1", "Flash2", "SquareTiling", "Chunked",
           "FlashDecoding", "GemmTiled"]
