"""memsim: a simulator and cost model for data movement in AI kernels."""
__version__ = "0.1.0"

from .errors import InputError, SpecError  # noqa: E402
from .hardware import load_hardware  # noqa: E402

__all__ = ["__version__", "InputError", "SpecError", "load_hardware"]
