"""memsim: a simulator and cost model for data movement in AI kernels."""
__version__ = "0.1.0"

from .errors import InputError, SpecError  # noqa: E402
from .hardware import load_hardware  # noqa: E402
from .config import RunConfig, load_run_config  # noqa: E402
from .result import Result  # noqa: E402
from .simulate import simulate  # noqa: E402  (the function shadows the submodule attribute)

__all__ = ["__version__", "InputError", "SpecError", "load_hardware", "RunConfig",
           "load_run_config", "Result", "simulate"]
