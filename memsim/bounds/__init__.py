"""Independent checks of the simulator: closed-form traffic, I/O lower bounds, rooflines."""
from .closed_forms import (ATTENTION_SCHEDULES, CHUNKED_DEFAULT_BLOCK_K, CHUNKED_DEFAULT_BLOCK_Q,
                           STATS_BYTES, TensorIO, Traffic, attention_traffic, flash1_block_sizes,
                           flash_decoding_splits, gemm_traffic, square_tiling_block,
                           sram_elements)
from .lower_bounds import LowerBound, attention_lower_bound, matmul_lower_bound
from .roofline import (HierarchicalRoofline, Roofline, RoofPoint, effective_peak,
                       hardware_roofline, hierarchical_roofline, roofline)

__all__ = [
    "ATTENTION_SCHEDULES", "CHUNKED_DEFAULT_BLOCK_K", "CHUNKED_DEFAULT_BLOCK_Q", "STATS_BYTES",
    "TensorIO", "Traffic", "attention_traffic", "flash1_block_sizes", "flash_decoding_splits",
    "gemm_traffic", "square_tiling_block", "sram_elements",
    "LowerBound", "attention_lower_bound", "matmul_lower_bound",
    "HierarchicalRoofline", "Roofline", "RoofPoint", "effective_peak", "hardware_roofline",
    "hierarchical_roofline",
    "roofline",
]
