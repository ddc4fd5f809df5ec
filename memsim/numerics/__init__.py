"""Reference numerics: numba kernels that run each attention schedule's tiling on real numbers
and count the elements they move across the SRAM boundary (see docs/schedules.md)."""
from .api import (SCHEDULES, AttentionNumerics, reference_attention, relative_error,
                  run_attention)
from .rounding import round_array

__all__ = ["SCHEDULES", "AttentionNumerics", "run_attention", "reference_attention",
           "relative_error", "round_array"]
