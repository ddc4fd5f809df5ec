"""Hardware <-> plain data and YAML, and validated what-if variants (overrides).

``hardware_to_dict`` writes the same schema that ``loader`` reads, so its output is itself a
valid hardware document: with ``human=True`` quantities are unit strings chosen to read back
exactly (``units.format_exact``), otherwise plain numbers in SI base units (bytes, bytes/s,
FLOP/s, s, Hz), which is what ``memsim hardware show --format json`` prints.

``apply_overrides`` edits that dict by dotted paths (list entries addressed by ``name``) and
validates the result through the same loader as files, so a variant is never less checked than
a file.
"""
from __future__ import annotations

from typing import Any, Mapping

import yaml

from .. import units
from ..errors import SpecError
from ..spec import join_path
from .model import (CacheSpec, ComputeUnit, FabricSpec, FlashSpec, GpuExecution, Hardware, Link,
                    MemoryLevel, Rate)

__all__ = ["hardware_to_dict", "hardware_to_yaml", "apply_overrides", "parse_override"]


class _Quantity:
    """Formats quantities either as exact unit strings or as base-unit numbers."""

    def __init__(self, human: bool):
        self.human = human

    def __call__(self, value: float | int, kind: str, op: bool = False) -> Any:
        if not self.human:
            return value
        text = units.format_exact(value, kind)
        if op and isinstance(text, str):
            # integer instruction classes read better as OP/s; same factor, same number
            text = text.replace("FLOP/s", "OP/s")
        return text


def _put(out: dict, key: str, value: Any, default: Any = None) -> None:
    """Set ``key`` unless ``value`` is the loader's default (keeps files short)."""
    if value != default:
        out[key] = value


def _pair(read: float, write: float, q: _Quantity, names: tuple[str, str]) -> Any:
    if read == write:
        return q(read, "bandwidth")
    return {names[0]: q(read, "bandwidth"), names[1]: q(write, "bandwidth")}


def _cache(cache: CacheSpec, q: _Quantity) -> dict:
    out: dict = {"line": q(cache.line_bytes, "bytes")}
    if cache.sector_bytes is not None:
        out["sector"] = q(cache.sector_bytes, "bytes")
    _put(out, "associativity", cache.associativity)
    _put(out, "policy", cache.policy, "lru")
    if cache.reuse_capacity_bytes is not None:
        out["reuse_capacity"] = q(cache.reuse_capacity_bytes, "bytes")
        out["reuse_source"] = cache.reuse_source
    return out


def _flash(flash: FlashSpec, q: _Quantity) -> dict:
    out: dict = {
        "page": q(flash.page_bytes, "bytes"),
        "channels": flash.channels,
        "channel_bandwidth": q(flash.channel_bandwidth, "bandwidth"),
        "latency_to_first_byte": q(flash.latency_to_first_byte_s, "time"),
        "queue_depth": flash.queue_depth,
    }
    if flash.request_overhead_s != 0.0:
        out["request_overhead"] = q(flash.request_overhead_s, "time")
    if flash.write_channel_bandwidth is not None:
        out["write_channel_bandwidth"] = q(flash.write_channel_bandwidth, "bandwidth")
    _put(out, "compute", flash.compute)
    out["source"] = flash.source
    return out


def _memory(level: MemoryLevel, q: _Quantity) -> dict:
    out: dict = {"name": level.name, "kind": level.kind,
                 "capacity": q(level.capacity_bytes, "bytes")}
    if level.max_per_block_bytes is not None:
        out["max_per_block"] = q(level.max_per_block_bytes, "bytes")
    _put(out, "instances", level.instances, 1)
    _put(out, "per", level.per)
    _put(out, "parent", level.parent)
    out["bandwidth"] = _pair(level.peak_read_bandwidth, level.peak_write_bandwidth, q,
                             ("read", "write"))
    if level.achievable_read_bandwidth is not None:
        out["achievable_bandwidth"] = _pair(level.achievable_read_bandwidth,
                                            level.achievable_write_bandwidth, q,
                                            ("read", "write"))
    _put(out, "achievable_source", level.achievable_source)
    if level.latency_s != 0.0:
        out["latency"] = q(level.latency_s, "time")
    if level.granularity_bytes != 1:
        out["granularity"] = q(level.granularity_bytes, "bytes")
    if level.cache is not None:
        out["cache"] = _cache(level.cache, q)
    if level.flash is not None:
        out["flash"] = _flash(level.flash, q)
    out["source"] = level.source
    return out


def _link(link: Link, q: _Quantity) -> dict:
    out: dict = {"name": link.name, "kind": link.kind, "between": [link.a, link.b],
                 "bandwidth": _pair(link.peak_bandwidth_ab, link.peak_bandwidth_ba, q,
                                    ("forward", "backward"))}
    if link.achievable_bandwidth_ab is not None:
        out["achievable_bandwidth"] = _pair(link.achievable_bandwidth_ab,
                                            link.achievable_bandwidth_ba, q,
                                            ("forward", "backward"))
    _put(out, "achievable_source", link.achievable_source)
    if link.latency_s != 0.0:
        out["latency"] = q(link.latency_s, "time")
    if link.overhead_s != 0.0:
        out["overhead"] = q(link.overhead_s, "time")
    _put(out, "peer_to_peer", link.peer_to_peer, False)
    out["source"] = link.source
    return out


def _rate(rate: Rate, q: _Quantity) -> dict:
    op = rate.unit == "op"
    out: dict = {"peak": q(rate.peak, "rate", op)}
    if rate.achievable is not None:
        out["achievable"] = q(rate.achievable, "rate", op)
    _put(out, "achievable_source", rate.achievable_source)
    _put(out, "unit", rate.unit, "flop")
    _put(out, "dtype", rate.dtype)
    _put(out, "instruction", rate.instruction)
    out["source"] = rate.source
    return out


def _compute(unit: ComputeUnit, q: _Quantity) -> dict:
    out: dict = {"name": unit.name}
    _put(out, "instances", unit.instances, 1)
    _put(out, "per", unit.per)
    _put(out, "source", unit.source, "")
    out["rates"] = {name: _rate(rate, q) for name, rate in unit.rates.items()}
    return out


def _gpu(gpu: GpuExecution, q: _Quantity) -> dict:
    out: dict = {"sms": gpu.sms, "max_blocks_per_sm": gpu.max_blocks_per_sm}
    _put(out, "max_threads_per_sm", gpu.max_threads_per_sm)
    _put(out, "registers_per_sm", gpu.registers_per_sm)
    if gpu.clock_hz is not None:
        out["clock"] = q(gpu.clock_hz, "frequency")
    out["launch_overhead"] = q(gpu.launch_overhead_s, "time")
    out["source"] = gpu.source
    return out


def _fabric(fabric: FabricSpec, q: _Quantity) -> dict:
    fabric_units = {}
    for name, unit in fabric.units.items():
        entry: dict = {"kind": unit.kind, "initiation_interval": unit.initiation_interval,
                       "latency": unit.latency_cycles}
        _put(entry, "width", unit.width, 1)
        _put(entry, "count", unit.count)
        _put(entry, "source", unit.source, "")
        fabric_units[name] = entry
    channel = fabric.channel
    return {"clock": q(fabric.clock_hz, "frequency"), "units": fabric_units,
            "channel": {"depth": channel.depth, "width": channel.width,
                        "latency": channel.latency_cycles},
            "source": fabric.source}


def hardware_to_dict(hw: Hardware, human: bool = False) -> dict:
    """``hw`` as plain data in the hardware YAML schema (``version: 1``).

    ``human=False`` (default): quantities as numbers in SI base units (capacities in bytes,
    bandwidths in bytes/s, rates in FLOP/s, times in s, clocks in Hz) for JSON and programs.
    ``human=True``: unit strings such as ``'80 GB'`` that parse back to exactly the same value.
    Either form loads back to a ``Hardware`` equal to ``hw``.
    """
    q = _Quantity(human)
    out: dict = {"version": 1, "name": hw.name, "kind": hw.kind}
    _put(out, "description", hw.description, "")
    if hw.sources:
        out["sources"] = list(hw.sources)
    if hw.gpu is not None:
        out["gpu"] = _gpu(hw.gpu, q)
    out["memories"] = [_memory(level, q) for level in hw.memories]
    if hw.links:
        out["links"] = [_link(link, q) for link in hw.links]
    if hw.compute:
        out["compute"] = [_compute(unit, q) for unit in hw.compute]
    if hw.fabric is not None:
        out["fabric"] = _fabric(hw.fabric, q)
    return out


class _Dumper(yaml.SafeDumper):
    """Block style, but short lists of scalars (``between: [hbm, host]``) in flow style."""


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    flow = bool(data) and all(isinstance(x, (int, float, str)) and len(str(x)) < 24
                              for x in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _represent_list)


def hardware_to_yaml(hw: Hardware) -> str:
    """Canonical YAML of ``hw`` with human units; ``parse_hardware(hardware_to_yaml(hw)) == hw``.
    """
    body = yaml.dump(hardware_to_dict(hw, human=True), Dumper=_Dumper, sort_keys=False,
                     default_flow_style=False, allow_unicode=True, width=4096)
    return f"# memsim hardware description: {hw.name} (written by memsim to_yaml)\n{body}"


# -- overrides --------------------------------------------------------------------------------
def parse_override(text: str) -> tuple[str, Any]:
    """``'memories.sram.capacity=128 KiB'`` -> ``('memories.sram.capacity', '128 KiB')``.

    The value is read as a YAML scalar, so ``gpu.sms=114`` gives the integer 114 and
    ``links.pcie.peer_to_peer=true`` a boolean; unit strings stay strings.
    """
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise SpecError(f"found {text!r}, expected KEY=VALUE such as "
                        f"'memories.sram.capacity=128 KiB'", file="overrides")
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError:
        value = raw.strip()
    return key.strip(), value


def _step(container: Any, segment: str, path: str, key: str) -> tuple[Any, Any, str]:
    """Resolve one dotted segment: (container to write into, its key, YAML path)."""
    if isinstance(container, list):
        names = [item.get("name") for item in container if isinstance(item, dict)]
        for index, item in enumerate(container):
            if isinstance(item, dict) and item.get("name") == segment:
                return container, index, join_path(path, index)
        raise SpecError(f"found no entry named {segment!r} in {path}, expected one of: "
                        f"{', '.join(map(str, names)) or '(none)'}", file="overrides", path=key)
    if isinstance(container, dict):
        return container, segment, join_path(path, segment)
    raise SpecError(f"{path} is {container!r}, not a section; cannot set {segment!r} inside it",
                    file="overrides", path=key)


def _expand_scalar_bandwidth(parent: dict, field: str, path: str) -> None:
    """``bandwidth: X`` -> ``{read: X, write: X}`` so that ``...bandwidth.read`` can be set."""
    value = parent[field]
    names = ("forward", "backward") if path.startswith("links") else ("read", "write")
    parent[field] = {names[0]: value, names[1]: value}


def apply_overrides(hw: Hardware, overrides: Mapping[str, Any]) -> Hardware:
    """A new ``Hardware``: ``hw`` with fields replaced by dotted path, validated like a file.

    ``{"memories.sram.capacity": "128 KiB", "compute.tensor.rates.bf16_wgmma.peak":
    "700 TFLOP/s", "gpu.sms": 114}``. Entries of lists (memories, links, compute) are addressed
    by their ``name``; values are what the YAML would hold (unit strings or base-unit numbers);
    ``None`` removes an optional field. A new ``capacity`` of a level with ``max_per_block``
    keeps the same per-block reserve unless ``max_per_block`` is given too, and a new ``peak``
    of a rate with a measured ``achievable`` keeps its efficiency (achievable / peak) unless
    ``achievable`` is given too. Errors name the
    override: ``overrides: memories.sram.capacity: found ...``.
    """
    overrides = _follow_peaks(hw, _follow_sms(hw, _follow_capacity(hw, overrides)))
    overrides = _follow_bandwidths(hw, overrides)
    data = hardware_to_dict(hw, human=True)
    written: dict[str, str] = {}          # YAML path -> override key
    for key, value in overrides.items():
        segments = str(key).split(".")
        if not all(segments):
            raise SpecError(f"found {key!r}, expected a dotted path such as "
                            f"'memories.sram.capacity'", file="overrides")
        container, field, path = data, None, ""
        for depth, segment in enumerate(segments):
            if field is not None:
                if field in ("bandwidth", "achievable_bandwidth") and \
                        not isinstance(container[field], dict):
                    _expand_scalar_bandwidth(container, field, path)
                container = container[field]
            container, field, path = _step(container, segment, path, str(key))
            last = depth == len(segments) - 1
            if not last and isinstance(container, dict) and field not in container:
                where = path.rpartition(".")[0] if "." in path else "the top level"
                raise SpecError(f"found no section {field!r} in {where}, expected one of: "
                                f"{', '.join(map(str, container)) or '(none)'}",
                                file="overrides", path=str(key))
        container[field] = value
        written[path] = str(key)
    from .loader import hardware_from_data
    try:
        result = hardware_from_data(data, name="overrides")
    except SpecError as exc:
        raise _blame(exc, written) from None
    object.__setattr__(result, "origin", hw.origin)
    return result


def _follow_capacity(hw: Hardware, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A new scratchpad capacity keeps the per-block reserve (e.g. CUDA's 1 KiB per block):
    ``memories.sram.capacity: 128 KiB`` on an H100 (228 KiB, 227 KiB per block) gives 127 KiB
    per block, unless ``max_per_block`` is overridden too."""
    result = dict(overrides)
    for key, value in overrides.items():
        parts = str(key).split(".")
        if len(parts) != 3 or parts[0] != "memories" or parts[2] != "capacity":
            continue
        if f"memories.{parts[1]}.max_per_block" in overrides or not hw.has_memory(parts[1]):
            continue
        level = hw.memory(parts[1])
        if level.max_per_block_bytes is None:
            continue
        try:
            capacity = units.parse(value, "bytes")
        except units.UnitError:
            continue                      # the loader reports the bad value itself
        reserve = level.capacity_bytes - level.max_per_block_bytes
        follow = capacity - reserve if capacity > reserve else None
        result[f"memories.{parts[1]}.max_per_block"] = follow
    return result


def _follow_sms(hw: Hardware, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A new ``gpu.sms`` scales what is per SM: the ``instances`` of memory levels and compute
    units with ``per: sm``, their aggregate bandwidths and rates (per-SM values are kept), unless
    those fields are overridden too. ``gpu.sms: 114`` on an H100 SXM gives 114 shared memories,
    456 tensor cores and 114/132 of the aggregate shared-memory bandwidth and tensor rates."""
    result = dict(overrides)
    new = overrides.get("gpu.sms")
    if hw.gpu is None or isinstance(new, bool) or not isinstance(new, int) or new <= 0:
        return result                     # absent, or bad: the loader reports a bad value
    ratio = new / hw.gpu.sms

    def follow(key: str, value: Any) -> None:
        if not any(k == key or k.startswith(key + ".") for k in overrides):
            result[key] = value

    for level in hw.memories:
        if level.per != "sm":
            continue
        base = f"memories.{level.name}"
        follow(f"{base}.instances", max(1, round(level.instances * ratio)))
        if level.achievable_read_bandwidth is not None and not any(
                k.startswith(f"{base}.bandwidth") for k in overrides):
            follow(f"{base}.achievable_bandwidth",
                   {"read": level.achievable_read_bandwidth * ratio,
                    "write": level.achievable_write_bandwidth * ratio})
        follow(f"{base}.bandwidth", {"read": level.peak_read_bandwidth * ratio,
                                     "write": level.peak_write_bandwidth * ratio})
    for unit in hw.compute:
        if unit.per != "sm":
            continue
        base = f"compute.{unit.name}"
        follow(f"{base}.instances", max(1, round(unit.instances * ratio)))
        for rate in unit.rates.values():
            follow(f"{base}.rates.{rate.name}.peak", rate.peak * ratio)
            if rate.achievable is not None:
                follow(f"{base}.rates.{rate.name}.achievable", rate.achievable * ratio)
    return result


def _follow_peaks(hw: Hardware, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A new ``peak`` keeps the measured efficiency: ``achievable`` scales with it (746 of
    989.4 TFLOP/s stays 75.4 % of the new peak), unless ``achievable`` is overridden too."""
    result = dict(overrides)
    for key, value in overrides.items():
        parts = str(key).split(".")
        if len(parts) != 5 or parts[0] != "compute" or parts[2] != "rates" or \
                parts[4] != "peak":
            continue
        if ".".join(parts[:4] + ["achievable"]) in overrides:
            continue
        rate = next((u.rates.get(parts[3]) for u in hw.compute if u.name == parts[1]), None)
        if rate is None or rate.achievable is None:
            continue
        try:
            peak = units.parse(value, "rate")
        except units.UnitError:
            continue                      # the loader reports the bad value itself
        result[".".join(parts[:4] + ["achievable"])] = rate.achievable / rate.peak * peak
    return result


def _follow_bandwidths(hw: Hardware, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A new peak ``bandwidth`` of a level or link with a measured ``achievable_bandwidth``
    keeps its efficiency per direction (2.98 of 3.35 TB/s stays 89 % of the new peak), unless
    ``achievable_bandwidth`` is overridden too."""
    result = dict(overrides)
    changed: dict[tuple[str, str], list] = {}
    for key, value in overrides.items():
        parts = str(key).split(".")
        if len(parts) not in (3, 4) or parts[0] not in ("memories", "links") or \
                parts[2] != "bandwidth":
            continue
        section, name = parts[0], parts[1]
        if any(k.startswith(f"{section}.{name}.achievable_bandwidth") for k in overrides):
            continue
        if section == "memories":
            entry = next((m for m in hw.memories if m.name == name), None)
            names = ("read", "write")
            peak = entry and (entry.peak_read_bandwidth, entry.peak_write_bandwidth)
            ach = entry and (entry.achievable_read_bandwidth, entry.achievable_write_bandwidth)
        else:
            entry = next((x for x in hw.links if x.name == name), None)
            names = ("forward", "backward")
            peak = entry and (entry.peak_bandwidth_ab, entry.peak_bandwidth_ba)
            ach = entry and (entry.achievable_bandwidth_ab, entry.achievable_bandwidth_ba)
        if entry is None or ach[0] is None:
            continue
        new = changed.setdefault((section, name), [list(peak), peak, ach, names])[0]
        try:
            if len(parts) == 4:
                if parts[3] not in names:
                    continue
                new[names.index(parts[3])] = units.parse(value, "bandwidth")
            elif isinstance(value, dict):
                if value.get("scope", "aggregate") != "aggregate":
                    continue              # per-instance figures: left to the user
                first = units.parse(value.get(names[0]), "bandwidth")
                new[:] = [first, units.parse(value.get(names[1], first), "bandwidth")]
            else:
                new[:] = [units.parse(value, "bandwidth")] * 2
        except (units.UnitError, TypeError):
            continue                      # the loader reports the bad value itself
    for (section, name), (new, peak, ach, names) in changed.items():
        result[f"{section}.{name}.achievable_bandwidth"] = {
            names[i]: ach[i] * new[i] / peak[i] for i in range(2)}
    return result


def _blame(exc: SpecError, written: dict[str, str]) -> SpecError:
    """Re-address a loader error to the override that caused it, where one did."""
    where = exc.path or ""
    for path, key in sorted(written.items(), key=lambda item: -len(item[0])):
        if where == path or where.startswith((path + ".", path + "[")):
            return SpecError(exc.detail, file="overrides", path=key)
    keys = ", ".join(written.values())
    return SpecError(exc.detail, file=f"overrides ({keys})", path=exc.path)
