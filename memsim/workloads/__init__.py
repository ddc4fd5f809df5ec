"""Workload definitions (attention, GEMM, LLM models) and their masks."""
