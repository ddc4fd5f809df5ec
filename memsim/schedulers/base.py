"""Schedule base class and the registry of schedules by name.

A schedule turns (workload, hardware, options) into a tile program (``kernels()``). Options are
read from a :class:`memsim.spec.Node` so that bad values are located errors; schedules that
cannot run (blocks that do not fit in SRAM) raise :class:`ScheduleError` naming the numbers.
"""
from __future__ import annotations

from typing import Any, ClassVar, Mapping

import numpy as np

from ..dtypes import DTYPES, dtype_bytes
from ..errors import InputError, ScheduleError, SramFitError
from ..spec import Node, document_from_data

__all__ = ["Schedule", "register_schedule", "get_schedule", "schedule_names",
           "default_instruction", "fit_blocks"]

_REGISTRY: dict[str, type] = {}


def register_schedule(cls: type) -> type:
    """Class decorator: register ``cls`` under ``cls.kind``; duplicate names are refused."""
    if cls.kind in _REGISTRY:
        raise ValueError(f"schedule {cls.kind!r} is already registered "
                         f"(by {_REGISTRY[cls.kind].__qualname__})")
    _REGISTRY[cls.kind] = cls
    return cls


def get_schedule(kind: str) -> type:
    """The schedule class registered as ``kind``; an InputError listing the known names."""
    try:
        return _REGISTRY[kind]
    except (KeyError, TypeError):
        raise InputError(f"unknown schedule kind {kind!r}, expected one of: "
                         f"{', '.join(sorted(_REGISTRY))}") from None


def schedule_names() -> tuple[str, ...]:
    """Names of the registered schedules, sorted."""
    return tuple(sorted(_REGISTRY))


def default_instruction(hw, dtype: str) -> str:
    """The tensor instruction class for ``dtype``: ``{dtype}_wgmma``, else ``{dtype}_mma``,
    else any rate of that dtype (fp32 uses tf32 tensor cores)."""
    want = "tf32" if dtype == "fp32" else dtype
    known = {name: rate for unit in hw.compute for name, rate in unit.rates.items()}
    for name in (f"{want}_wgmma", f"{want}_mma"):
        if name in known:
            return name
    for name, rate in known.items():
        if rate.dtype == want and not name.startswith("exp"):
            return name
    raise ScheduleError(f"hardware {hw.name!r} has no tensor instruction class for dtype "
                        f"{dtype!r}; known classes: {', '.join(sorted(known))}")


def fit_blocks(sizes: list[int], need, limit: float) -> list[int]:
    """Halve the largest of ``sizes`` until ``need(*sizes) <= limit``; None if even all-ones
    does not fit."""
    sizes = list(sizes)
    while need(*sizes) > limit:
        k = max(range(len(sizes)), key=lambda i: sizes[i])
        if sizes[k] <= 1:
            return None
        sizes[k] = (sizes[k] + 1) // 2
    return sizes


class Schedule:
    """Base of all schedules. Subclasses set ``kind``, ``workload_kind``, ``default_stages``
    and implement ``_options(node)`` (read extra options), ``_resolve()`` and ``kernels()``."""

    kind: ClassVar[str] = ""
    workload_kind: ClassVar[str] = "attention"
    default_stages: ClassVar[int] = 2

    def __init__(self, workload, hardware, **options: Any):
        if getattr(workload, "kind", None) != self.workload_kind:
            raise ScheduleError(f"schedule {self.kind!r} runs {self.workload_kind} workloads, "
                                f"got a {getattr(workload, 'kind', type(workload).__name__)} "
                                "workload")
        if hardware.gpu is None or not hardware.has_memory("sram"):
            raise ScheduleError(f"schedule {self.kind!r} needs a GPU with an 'sram' level; "
                                f"hardware {hardware.name!r} has none")
        self.workload = workload
        self.hw = hardware
        self.options = dict(options)
        self.stages = options.get("stages") or self.default_stages
        self.instruction = options.get("instruction") or default_instruction(hardware,
                                                                             workload.dtype)
        self.hw.find_rate(self.instruction)
        sram = hardware.memory("sram")
        self.sram_limit = sram.max_per_block_bytes or sram.capacity_bytes
        self.exp_class = "exp_sfu" if any("exp_sfu" in u.rates for u in hardware.compute) \
            else None
        self._resolve()

    # -- construction from run configurations --------------------------------------------------
    @classmethod
    def from_node(cls, node: Node, workload, hardware) -> "Schedule":
        """Build from the ``schedule`` mapping of a run configuration (unknown keys rejected;
        errors name the line and key)."""
        node.opt("kind", str)
        options = {"stages": node.opt("stages", int, None, minimum=1, maximum=16)}
        instruction = node.opt("instruction", str, None)
        if instruction is not None:
            try:
                hardware.find_rate(instruction)
            except InputError as exc:
                raise node.error("instruction", str(exc)) from None
        options["instruction"] = instruction
        options.update(cls._options(node))
        node.close()
        return cls(workload, hardware, **options)

    @classmethod
    def from_dict(cls, options: Mapping[str, Any], workload, hardware) -> "Schedule":
        """Build from plain options (the Python API), with the same checks as ``from_node``."""
        doc = document_from_data(dict(options), name=f"schedule {cls.kind}")
        return cls.from_node(doc.root("schedule options"), workload, hardware)

    @classmethod
    def _options(cls, node: Node) -> dict:
        return {}

    @staticmethod
    def _block_option(node: Node, key: str):
        return node.opt(key, int, None, minimum=1)

    @staticmethod
    def _dtype_option(node: Node, key: str):
        return node.opt(key, DTYPES, None)

    # -- results ---------------------------------------------------------------------------------
    def resolved(self) -> dict:
        """The options after defaults, for the result's ``schedule`` section."""
        out = {"kind": self.kind}
        out.update(self._resolved())
        out["stages"] = self.stages
        out["instruction"] = self.instruction
        return out

    def _resolved(self) -> dict:
        return {}

    def _resolve(self) -> None:
        pass

    def kernels(self) -> list:
        raise NotImplementedError

    # -- helpers ---------------------------------------------------------------------------------
    def _too_big(self, what: str, need: float, detail: str) -> SramFitError:
        return SramFitError(
            f"{self.kind} {what} needs {need:,.0f} B of SRAM per block ({detail}); "
            f"sram allows {self.sram_limit:,.0f} B per block on {self.hw.name}; "
            "use smaller blocks or fewer stages")


def one_of(cache: dict, i: int) -> np.ndarray:
    """A cached one-element index array ``[i]`` (shared by all blocks that use it)."""
    arr = cache.get(i)
    if arr is None:
        arr = cache[i] = np.array([i], dtype=np.int64)
    return arr


def elem_bytes(dtype: str) -> float:
    return dtype_bytes(dtype)

