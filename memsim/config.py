"""Run configurations: the YAML that ``memsim run`` reads (contract in ../shared/DESIGN.md).

    hardware: h100-sxm              # preset name or path to a hardware YAML (relative paths are
                                    # resolved against the config file's directory first)
    hardware_overrides:             # optional: Hardware.with_overrides paths -> values
      memories.sram.capacity: 128 KiB
    workload: {kind: attention, ...}   # kinds from memsim.workloads.registry
    schedule: {kind: flash2, ...}      # schedules from memsim.schedulers
    simulation:                     # optional
      granularity: tile             # tile | block | wave (the engine's modes)
      trace: false

``load_run_config(source, overrides)`` returns a frozen :class:`RunConfig`. ``overrides`` are
``("workload.batch", "8")`` pairs (``--set workload.batch=8``); values are parsed as YAML
scalars. ``--set hardware.memories.sram.capacity=128KiB`` is a shorthand for
``hardware_overrides``. Errors are located (file, line, YAML path) and name the ``--set`` that
introduced a bad value.
"""
from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from .errors import InputError, SpecError
from .spec import Document, Node, document_from_data, load_document

__all__ = ["RunConfig", "load_run_config", "parse_override", "is_run_config",
           "validate_run_config", "GRANULARITIES",
           "SUPPORTED_VERSIONS"]

SUPPORTED_VERSIONS = (1,)
GRANULARITIES = ("tile", "block", "wave")
_NUMBER = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)$")


@dataclass(frozen=True)
class RunConfig:
    """A validated run configuration.

    ``hardware`` is a ``memsim.hardware.Hardware`` (overrides applied), ``workload`` the kind's
    frozen workload object, ``schedule`` the schedule object built by its registered class (None
    for workload kinds that plan their own execution), ``data`` the configuration as plain data
    after ``--set`` overrides (what produced this RunConfig).
    """

    hardware: Any
    hardware_name: str
    workload: Any
    workload_kind: str
    schedule: Any
    granularity: str = "tile"
    trace: bool = False
    source: str | None = None
    data: Mapping = field(default_factory=dict, compare=False, repr=False)
    l2_dirty_bytes: float | None = None

    def with_overrides(self, overrides: Iterable[tuple[str, Any]]) -> "RunConfig":
        """A new RunConfig with ``--set``-style overrides applied to this one's data."""
        return load_run_config(self.data, overrides, name=self.source or "<config>")


def parse_override(text: str) -> tuple[str, Any]:
    """Split ``"a.b=value"`` into ``("a.b", value)`` with value parsed as a YAML scalar."""
    path, sep, value = text.partition("=")
    if not sep or not path.strip():
        raise InputError(f"--set {text!r}: expected PATH=VALUE, e.g. workload.batch=8")
    return path.strip(), _scalar(value)


def _scalar(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if _NUMBER.match(value.strip()):      # YAML 1.1 reads "1e3" as a string; users mean 1000
        number = float(value)
        return int(number) if number.is_integer() and "." not in value else number
    try:
        parsed = yaml.safe_load(value) if value.strip() else None
    except yaml.YAMLError:
        return value
    return parsed if not isinstance(parsed, (dict, list)) or value.strip()[0] in "[{" else value


def _apply_overrides(data: dict, overrides: Iterable[tuple[str, Any]]) -> dict[str, str]:
    """Set each ``path`` in ``data`` in place; returns {path: original --set text}."""
    applied: dict[str, str] = {}
    for path, value in overrides:
        value = _scalar(value)
        text = f"--set {path}={value}"
        keys = path.split(".")
        if not all(keys):
            raise InputError(f"{text}: empty key in path {path!r}")
        if keys[0] == "hardware" and len(keys) > 1:
            if not isinstance(data.get("hardware"), str):
                raise InputError(f"{text}: hardware.* overrides need 'hardware' to be a preset "
                                 "name or path (use hardware_overrides)")
            hw_over = data.setdefault("hardware_overrides", {})
            if not isinstance(hw_over, dict):
                raise InputError(f"{text}: hardware_overrides is not a mapping")
            hw_over[".".join(keys[1:])] = value
            applied["hardware_overrides." + ".".join(keys[1:])] = text
            continue
        node = data
        for depth, key in enumerate(keys[:-1]):
            child = node.get(key)
            if child is None:
                child = node[key] = {}
            if not isinstance(child, dict):
                where = ".".join(keys[:depth + 1])
                raise InputError(f"{text}: {where} is {type(child).__name__} {child!r}, "
                                 f"not a mapping, so it has no key {keys[depth + 1]!r}")
            node = child
        node[keys[-1]] = value
        applied[path] = text
    return applied


def _resolve_hardware_path(ref: str, source: str | None) -> str:
    if source and ("/" in ref or ref.endswith((".yaml", ".yml"))) and not Path(ref).is_absolute():
        candidate = Path(source).parent / ref
        if candidate.exists():
            return str(candidate)
    return ref


def _load_hardware(root: Node, source: str | None):
    from .hardware import hardware_from_data, load_hardware
    ref = root.data.get("hardware")
    if isinstance(ref, dict):
        root.child("hardware")
        hw = hardware_from_data(ref, name=f"{root.doc.file}: hardware")
        name = hw.name
    else:
        name = root.req("hardware", str)
        hw = load_hardware(_resolve_hardware_path(name, source))
    over = root.opt("hardware_overrides", dict, None)
    if over:
        try:
            hw = hw.with_overrides({str(k): v for k, v in over.items()})
        except SpecError as exc:
            # with_overrides names the override key; locate it in this file
            key = f"hardware_overrides.{exc.path}" if exc.path else "hardware_overrides"
            raise SpecError(exc.detail, file=root.doc.file,
                            line=root.doc.line_of(over, exc.path) or
                            root.doc.line_of(root.data, "hardware_overrides"),
                            path=key) from None
        except InputError as exc:
            raise root.error("hardware_overrides", str(exc)) from None
    return hw, name


def _load_schedule(node: Node | None, workload: Any, hardware: Any, kind_entry: Any) -> Any:
    if node is None:
        return None
    if not kind_entry.needs_schedule:
        raise node.error(None, f"workload kind {kind_entry.name!r} plans its own execution, "
                               "expected no 'schedule' section")
    from .schedulers import get_schedule
    kind = node.req("kind", str)
    try:
        cls = get_schedule(kind)
    except SpecError:
        raise
    except InputError as exc:
        raise node.error("kind", str(exc)) from None
    return cls.from_node(node, workload, hardware)


def _from_document(doc: Document, source: str | None) -> RunConfig:
    from .workloads import get_workload_kind
    root = doc.root("a run configuration")
    root.version(SUPPORTED_VERSIONS, required=False)
    root.opt("description", str)
    hardware, hardware_name = _load_hardware(root, source)
    wl_node = root.child("workload")
    kind = wl_node.req("kind", str)
    try:
        entry = get_workload_kind(kind)
    except InputError as exc:
        raise wl_node.error("kind", str(exc)) from None
    workload = entry.load(wl_node)
    sched_node = root.child("schedule", required=False)
    if sched_node is None and entry.needs_schedule:
        raise doc.error(f"missing required section 'schedule' (workload kind {kind!r} needs a "
                        "schedule, e.g. {kind: flash2})", root.data)
    schedule = _load_schedule(sched_node, workload, hardware, entry)
    sim = root.child("simulation", required=False)
    granularity, trace, dirty = "tile", False, None
    if sim is not None:
        granularity = sim.opt("granularity", GRANULARITIES, "tile")
        trace = sim.opt("trace", bool, False)
        dirty = _l2_dirty(sim, hardware)
        sim.close()
    root.close()
    return RunConfig(hardware, hardware_name, workload, kind, schedule, granularity, trace,
                     source, doc.data, dirty)


def _l2_dirty(sim, hardware) -> float | None:
    """``simulation.l2_dirty_at_start``: absent, L2 starts empty; else it starts full of other
    data of which this many bytes are dirty."""
    value = sim.opt("l2_dirty_at_start", "bytes", None, nonnegative=True)
    if value is None:
        return None
    cap = hardware.memory("l2").lru_capacity_bytes if hardware.has_memory("l2") else 0.0
    if value < 0 or value > cap:
        raise sim.error("l2_dirty_at_start", f"expected bytes between 0 and the L2 capacity "
                                              f"the simulator uses ({cap:,.0f} B), got "
                                              f"{value:,.0f} B")
    return float(value)


def load_run_config(source: "str | Path | Mapping | RunConfig",
                    overrides: Iterable[tuple[str, Any]] = (), *,
                    name: str | None = None) -> RunConfig:
    """Load and validate a run configuration.

    ``source`` is a path to a YAML file, already-parsed data (a mapping, e.g. from a notebook),
    or a RunConfig (its data is re-validated with the overrides). ``overrides`` are
    ``(path, value)`` pairs; string values are parsed as YAML scalars.
    """
    overrides = list(overrides)
    if isinstance(source, RunConfig):
        if not overrides:
            return source
        return load_run_config(source.data, overrides, name=name or source.source)
    if isinstance(source, Mapping):
        doc = document_from_data(copy.deepcopy(dict(source)), name or "<config>")
        # a RunConfig re-derived from a file keeps resolving relative hardware paths there
        file = name if name and Path(name).is_file() else None
    else:
        doc = load_document(source)
        file = str(source)
    if not isinstance(doc.data, dict):
        doc.root("a run configuration")   # raises the located "expected a mapping" error
    applied = _apply_overrides(doc.data, overrides)
    try:
        return _from_document(doc, file)
    except SpecError as exc:
        # Name the --set that introduced the offending value, if one did.
        for path, text in applied.items():
            if exc.path and (exc.path == path or exc.path.startswith(path + ".")
                             or path.startswith(exc.path + ".")):
                raise SpecError(f"{exc.detail} (from {text})", file=exc.file, line=exc.line,
                                path=exc.path) from None
        raise



def is_run_config(data: Any) -> bool:
    """Whether parsed YAML looks like a run configuration (a mapping with a ``workload``
    section), so that ``memsim validate`` can dispatch on a file's content."""
    return isinstance(data, Mapping) and "workload" in data


def validate_run_config(path: "str | Path") -> RunConfig:
    """Load a run configuration only to check it (``memsim validate``); raises the located
    error of the first problem."""
    return load_run_config(path)
