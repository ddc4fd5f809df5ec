"""Registry of workload kinds: ``workload.kind`` in a run configuration -> how to load it and
how to simulate it.

Each kind registers a loader ``(Node) -> workload`` and a simulate function
``(RunConfig) -> Result``. Either may be given as a dotted path ``"package.module:attr.attr"``
resolved on first use, so that registering a kind imports nothing heavy (and the registry has
no import cycle with :mod:`memsim.simulate`). Duplicate names are
refused; a lookup miss lists the known kinds.

    register_workload("llm", "memsim.llm.workload:LlmWorkload.from_node",
                      "memsim.llm.simulate:simulate_llm", needs_schedule=False)
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

from ..errors import InputError

__all__ = ["WorkloadKind", "register_workload", "get_workload_kind", "workload_kinds"]


@dataclass(frozen=True)
class WorkloadKind:
    """One registered workload kind.

    ``needs_schedule``: the run configuration must have a ``schedule`` section (tile-program
    workloads such as attention and gemm); kinds that plan their own execution say False.
    """

    name: str
    load_ref: Callable[[Any], Any] | str
    simulate_ref: Callable[..., Any] | str
    needs_schedule: bool = True
    description: str = ""

    def load(self, node: Any) -> Any:
        """Build the kind's workload from the ``workload`` Node of a run configuration."""
        return _resolve(self.load_ref)(node)

    def simulate(self, config: Any) -> Any:
        """Run the kind's simulate function on a RunConfig."""
        return _resolve(self.simulate_ref)(config)


def _resolve(ref: Callable[..., Any] | str) -> Callable[..., Any]:
    if not isinstance(ref, str):
        return ref
    module, _, attrs = ref.partition(":")
    obj: Any = importlib.import_module(module)
    for attr in attrs.split("."):
        obj = getattr(obj, attr)
    return obj


_KINDS: dict[str, WorkloadKind] = {}


def register_workload(name: str, load: Callable[[Any], Any] | str,
                      simulate: Callable[..., Any] | str,
                      *, needs_schedule: bool = True, description: str = "") -> WorkloadKind:
    """Register a workload kind; refuses a name that is already registered."""
    if name in _KINDS:
        raise ValueError(f"workload kind {name!r} is already registered")
    entry = WorkloadKind(name, load, simulate, needs_schedule, description)
    _KINDS[name] = entry
    return entry


def get_workload_kind(name: str) -> WorkloadKind:
    """The registered kind ``name``; an ``InputError`` listing the known kinds otherwise."""
    try:
        return _KINDS[name]
    except KeyError:
        raise InputError(f"unknown workload kind {name!r}, expected one of: "
                         f"{', '.join(sorted(_KINDS))}") from None


def workload_kinds() -> tuple[str, ...]:
    """Names of the registered workload kinds, sorted."""
    return tuple(sorted(_KINDS))
