"""Parse hardware YAML (``version: 1``) into ``Hardware`` strictly, with located errors."""
from __future__ import annotations

from pathlib import Path

from ..errors import SpecError
from ..spec import Document, Node, document_from_data, find_preset, load_document
from ..spec import preset_names as spec_preset_names
from ..units import format_quantity
from .model import (HARDWARE_KINDS, MEMORY_KINDS, CacheSpec, ChannelSpec, ComputeUnit, FabricSpec,
                    FabricUnit, FlashSpec, GpuExecution, Hardware, Link, MemoryLevel, Rate)

__all__ = ["parse_hardware", "hardware_from_document", "hardware_from_data", "PRESET_DIR",
           "preset_names", "load_hardware"]

PRESET_DIR = Path(__file__).parent / "presets"
SUPPORTED_VERSIONS = (1,)


def preset_names() -> list[str]:
    """Names of the hardware presets shipped with memsim."""
    return spec_preset_names(PRESET_DIR)


def load_hardware(name_or_path: "str | Path | Hardware") -> Hardware:
    """Load a preset by name (``h100-sxm``) or a hardware YAML file by path."""
    if isinstance(name_or_path, Hardware):
        return name_or_path
    text = str(name_or_path)
    path = find_preset(text, PRESET_DIR)
    if path is None:
        raise SpecError(f"unknown hardware preset {text!r}, expected one of: "
                        f"{', '.join(preset_names())} (or a path to a YAML file)")
    return _with_origin(hardware_from_document(load_document(path)), text)


def _with_origin(hw: Hardware, origin: str) -> Hardware:
    object.__setattr__(hw, "origin", origin)
    return hw


def parse_hardware(text: str, name: str = "<string>") -> Hardware:
    """Parse hardware YAML given as a string."""
    return hardware_from_document(load_document(name, text))


def hardware_from_data(data: dict, name: str = "<data>") -> Hardware:
    """Validate already-parsed data (the Python API) into ``Hardware``."""
    return hardware_from_document(document_from_data(data, name))


def hardware_from_document(doc: Document) -> Hardware:
    root = doc.root("a hardware description")
    root.version(SUPPORTED_VERSIONS)
    name = root.req("name", str)
    kind = root.req("kind", HARDWARE_KINDS)
    description = root.opt("description", str, "")
    sources = tuple(_string_list(root, "sources"))

    gpu_node = root.child("gpu", required=False)
    gpu = _gpu(gpu_node) if gpu_node else None
    if kind == "gpu" and gpu is None:
        raise root.error(None, "missing required section 'gpu' (kind: gpu needs sms, "
                               "max_blocks_per_sm, launch_overhead)")

    memory_nodes = root.children("memories")
    memories = tuple(_memory(node) for node in memory_nodes)
    _check_unique(memory_nodes, [m.name for m in memories], "memory level")
    names = {m.name for m in memories}
    for node, level in zip(memory_nodes, memories):
        if level.parent is not None and level.parent not in names:
            raise node.error("parent", f"found parent {level.parent!r}, expected one of the "
                                       f"memory levels: {', '.join(sorted(names))}")
        if level.parent == level.name:
            raise node.error("parent", f"level {level.name!r} names itself as its parent")
    _check_acyclic(memory_nodes, memories)

    compute_nodes = root.children("compute", required=False)
    compute = tuple(_compute(node) for node in compute_nodes)
    _check_unique(compute_nodes, [c.name for c in compute], "compute unit")
    _check_rates_unique(compute_nodes, compute)
    units = {c.name for c in compute}
    for node, level in zip(memory_nodes, memories):
        if level.flash and level.flash.compute and level.flash.compute not in units:
            raise node.error("flash", f"flash.compute names {level.flash.compute!r}, expected "
                                      f"one of the compute units: "
                                      f"{', '.join(sorted(units)) or '(none)'}")

    link_nodes = root.children("links", required=False)
    links = tuple(_link(node) for node in link_nodes)
    _check_unique(link_nodes, [link.name for link in links], "link")
    for node, link in zip(link_nodes, links):
        for end in (link.a, link.b):
            if end not in names:
                raise node.error("between", f"found endpoint {end!r}, expected one of the "
                                            f"memory levels: {', '.join(sorted(names))}")
        if link.a == link.b:
            raise node.error("between", f"found [{link.a}, {link.b}], expected two different "
                                        f"memory levels")

    fabric_node = root.child("fabric", required=False)
    fabric = _fabric(fabric_node) if fabric_node else None
    if kind == "dataflow" and fabric is None:
        raise root.error(None, "missing required section 'fabric' (kind: dataflow)")
    root.close()
    return Hardware(name=name, kind=kind, description=description, memories=memories,
                    links=links, compute=compute, gpu=gpu, fabric=fabric, sources=sources)


# -- sections ---------------------------------------------------------------------------------
def _string_list(node: Node, key: str) -> list[str]:
    values = node.opt(key, list, [])
    for index, value in enumerate(values):
        if not isinstance(value, str) or not value.strip():
            raise node.doc.error(f"found {value!r}, expected a non-empty string", values, index,
                                 f"{node.path + '.' if node.path else ''}{key}[{index}]")
    return list(values)


def _source(node: Node, required: bool = True) -> str:
    if required:
        return node.req("source", str)
    return node.opt("source", str, "")


def _bandwidth_pair(node: Node, key: str = "bandwidth",
                    names: tuple[str, str] = ("read", "write"),
                    scoped: bool = True) -> tuple[float, float]:
    """``bandwidth: 3.35 TB/s`` or ``bandwidth: {read: ..., write: ..., scope: ...}``.

    ``names`` are the two directions' keys. For memory levels (``scoped``) ``scope``
    (``{key}_scope`` next to a scalar) is ``aggregate`` (default) or ``per_instance``; stored
    aggregate. Links have no instances and no scope.
    """
    instances = node.opt("instances", int, 1, positive=True) if scoped else 1
    scope = "aggregate"
    choices = ("aggregate", "per_instance")
    if node.has(key) and isinstance(node.data[key], dict):
        bw = node.child(key)
        read = bw.req(names[0], "bandwidth", positive=True)
        write = bw.opt(names[1], "bandwidth", read, positive=True)
        if scoped:
            scope = bw.opt("scope", choices, "aggregate")
        bw.close()
    else:
        read = write = node.req(key, "bandwidth", positive=True)
        if scoped:
            scope = node.opt(f"{key}_scope", choices, "aggregate")
    if scope == "per_instance":
        read, write = read * instances, write * instances
    return read, write


def _achievable_pair(node: Node, peak: tuple[float, float], names: tuple[str, str],
                     scoped: bool = True) -> tuple[float | None, float | None, str | None]:
    """The optional measured ``achievable_bandwidth`` (same forms as ``bandwidth``), at most
    the peak per direction, with its required ``achievable_source``."""
    source = node.opt("achievable_source", str, None)
    if node.opt("achievable_bandwidth", lambda _n, _k, v: v, None) is None:   # absent or null
        if source is not None:
            raise node.error("achievable_source", "found achievable_source without "
                                                  "achievable_bandwidth, expected both or neither")
        return None, None, None
    pair = _bandwidth_pair(node, "achievable_bandwidth", names, scoped)
    for value, top, direction in zip(pair, peak, names):
        if value > top * (1 + 1e-12):
            raise node.error("achievable_bandwidth",
                             f"found {format_quantity(value, 'bandwidth')} ({direction}), "
                             f"expected at most the peak bandwidth "
                             f"({format_quantity(top, 'bandwidth')})")
    if source is None:
        raise node.error(None, "missing required field 'achievable_source' (a string saying "
                               "where the achievable bandwidth was measured)")
    return pair[0], pair[1], source


def _memory(node: Node) -> MemoryLevel:
    name = node.req("name", str)
    kind = node.req("kind", MEMORY_KINDS)
    capacity = node.req("capacity", "bytes", positive=True)
    instances = node.opt("instances", int, 1, positive=True)
    read, write = _bandwidth_pair(node)
    a_read, a_write, a_source = _achievable_pair(node, (read, write), ("read", "write"))
    cache = None
    cache_node = node.child("cache", required=False)
    if cache_node is not None:
        cache = CacheSpec(
            line_bytes=cache_node.req("line", "bytes", positive=True),
            sector_bytes=cache_node.opt("sector", "bytes", None, positive=True),
            associativity=cache_node.opt("associativity", int, None, positive=True),
            policy=cache_node.opt("policy", ("lru",), "lru"),
            reuse_capacity_bytes=cache_node.opt("reuse_capacity", "bytes", None, positive=True),
            reuse_source=cache_node.opt("reuse_source", str, None),
        )
        if (cache.reuse_capacity_bytes is None) != (cache.reuse_source is None):
            raise cache_node.error("reuse_capacity" if cache.reuse_source else "reuse_source",
                                   "expected both reuse_capacity and reuse_source (where the "
                                   "reuse capacity was measured), or neither")
        if cache.reuse_capacity_bytes is not None and cache.reuse_capacity_bytes > capacity:
            raise cache_node.error("reuse_capacity", f"found {cache.reuse_capacity_bytes:,} B, "
                                                     f"expected at most the capacity "
                                                     f"({capacity:,} B)")
        cache_node.close()
    if kind == "cache" and cache is None:
        raise node.error(None, "kind 'cache' needs a 'cache' section (line, sector, "
                               "associativity)")
    flash = None
    flash_node = node.child("flash", required=False)
    if flash_node is not None:
        flash = FlashSpec(
            page_bytes=flash_node.req("page", "bytes", positive=True),
            channels=flash_node.req("channels", int, positive=True),
            channel_bandwidth=flash_node.req("channel_bandwidth", "bandwidth", positive=True),
            latency_to_first_byte_s=flash_node.req("latency_to_first_byte", "time",
                                                   nonnegative=True),
            queue_depth=flash_node.req("queue_depth", int, positive=True),
            request_overhead_s=flash_node.opt("request_overhead", "time", 0.0, nonnegative=True),
            write_channel_bandwidth=flash_node.opt("write_channel_bandwidth", "bandwidth", None,
                                                   positive=True),
            compute=flash_node.opt("compute", str, None),
            source=_source(flash_node),
        )
        flash_node.close()
    if kind == "flash" and flash is None:
        raise node.error(None, "kind 'flash' needs a 'flash' section (page, channels, "
                               "channel_bandwidth, latency_to_first_byte, queue_depth)")
    level = MemoryLevel(
        name=name, kind=kind, capacity_bytes=capacity, peak_read_bandwidth=read,
        peak_write_bandwidth=write, achievable_read_bandwidth=a_read,
        achievable_write_bandwidth=a_write, achievable_source=a_source,
        latency_s=node.opt("latency", "time", 0.0, nonnegative=True),
        instances=instances,
        per=node.opt("per", str, None),
        parent=node.opt("parent", str, None),
        granularity_bytes=node.opt("granularity", "bytes", 1, positive=True),
        max_per_block_bytes=node.opt("max_per_block", "bytes", None, positive=True),
        cache=cache, flash=flash, source=_source(node),
    )
    if level.max_per_block_bytes is not None and level.max_per_block_bytes > capacity:
        raise node.error("max_per_block", f"found {level.max_per_block_bytes} B, expected at "
                                          f"most the capacity ({capacity} B)")
    node.close()
    return level


def _link(node: Node) -> Link:
    name = node.req("name", str)
    between = node.req("between", list)
    if len(between) != 2 or not all(isinstance(x, str) for x in between):
        raise node.error("between", f"found {between!r}, expected a list of two level names")
    names = ("forward", "backward")
    ab, ba = _bandwidth_pair(node, "bandwidth", names, scoped=False)
    a_ab, a_ba, a_source = _achievable_pair(node, (ab, ba), names, scoped=False)
    link = Link(
        name=name, kind=node.req("kind", str), a=between[0], b=between[1], peak_bandwidth_ab=ab,
        peak_bandwidth_ba=ba, achievable_bandwidth_ab=a_ab, achievable_bandwidth_ba=a_ba,
        achievable_source=a_source, latency_s=node.opt("latency", "time", 0.0, nonnegative=True),
        overhead_s=node.opt("overhead", "time", 0.0, nonnegative=True),
        peer_to_peer=node.opt("peer_to_peer", bool, False), source=_source(node),
    )
    node.close()
    return link


def _compute(node: Node) -> ComputeUnit:
    name = node.req("name", str)
    instances = node.opt("instances", int, 1, positive=True)
    rates = {}
    for rate_name, rate_node in node.mapping_items("rates"):
        unit = rate_node.opt("unit", ("flop", "op"), "flop")
        peak = rate_node.req("peak", "rate", positive=True)
        achievable = rate_node.opt("achievable", "rate", None, positive=True)
        if achievable is not None and achievable > peak:
            raise rate_node.error("achievable", f"found {format_quantity(achievable, 'rate')}, "
                                                f"expected at most the peak "
                                                f"({format_quantity(peak, 'rate')})")
        achievable_source = rate_node.opt("achievable_source", str, None)
        if achievable is not None and achievable_source is None:
            raise rate_node.error(None, "missing required field 'achievable_source' (a string "
                                        "saying where the achievable rate was measured)")
        rates[rate_name] = Rate(
            name=rate_name, peak=peak, achievable=achievable, unit=unit,
            dtype=rate_node.opt("dtype", str, None),
            instruction=rate_node.opt("instruction", str, None),
            source=_source(rate_node), achievable_source=achievable_source,
        )
        rate_node.close()
    if not rates:
        raise node.error("rates", "found no rates, expected at least one instruction class")
    unit = ComputeUnit(name=name, instances=instances, rates=rates,
                       per=node.opt("per", str, None), source=_source(node, required=False))
    node.close()
    return unit


def _gpu(node: Node) -> GpuExecution:
    gpu = GpuExecution(
        sms=node.req("sms", int, positive=True),
        max_blocks_per_sm=node.req("max_blocks_per_sm", int, positive=True),
        launch_overhead_s=node.req("launch_overhead", "time", nonnegative=True),
        clock_hz=node.opt("clock", "frequency", None, positive=True),
        max_threads_per_sm=node.opt("max_threads_per_sm", int, None, positive=True),
        registers_per_sm=node.opt("registers_per_sm", int, None, positive=True),
        source=_source(node),
    )
    node.close()
    return gpu


def _fabric(node: Node) -> FabricSpec:
    clock = node.req("clock", "frequency", positive=True)
    units = {}
    for unit_name, unit_node in node.mapping_items("units"):
        units[unit_name] = FabricUnit(
            name=unit_name, kind=unit_node.req("kind", str),
            initiation_interval=unit_node.opt("initiation_interval", int, 1, positive=True),
            latency_cycles=unit_node.opt("latency", int, 1, nonnegative=True),
            width=unit_node.opt("width", int, 1, positive=True),
            count=unit_node.opt("count", int, None, positive=True),
            source=_source(unit_node, required=False),
        )
        unit_node.close()
    channel_node = node.child("channel")
    channel = ChannelSpec(depth=channel_node.req("depth", int, positive=True),
                          width=channel_node.opt("width", int, 1, positive=True),
                          latency_cycles=channel_node.opt("latency", int, 1, nonnegative=True))
    channel_node.close()
    fabric = FabricSpec(clock_hz=clock, units=units, channel=channel, source=_source(node))
    node.close()
    return fabric


# -- graph checks ------------------------------------------------------------------------------
def _check_unique(nodes: list[Node], names: list[str], what: str) -> None:
    seen: dict[str, int] = {}
    for node, name in zip(nodes, names):
        if name in seen:
            raise node.error("name", f"duplicate {what} name {name!r}, expected unique names")
        seen[name] = 1


def _check_rates_unique(nodes: list[Node], compute: tuple[ComputeUnit, ...]) -> None:
    # Hardware.find_rate looks an instruction class up across all units: names must be unique
    owner: dict[str, str] = {}
    for node, unit in zip(nodes, compute):
        for rate in unit.rates:
            if rate in owner:
                raise node.error("rates", f"found instruction class {rate!r} again (already in "
                                          f"compute unit {owner[rate]!r}), expected each "
                                          f"instruction class in one unit only")
            owner[rate] = unit.name


def _check_acyclic(nodes: list[Node], memories: tuple[MemoryLevel, ...]) -> None:
    parent = {m.name: m.parent for m in memories}
    for node, level in zip(nodes, memories):
        seen = [level.name]
        current = level.parent
        while current is not None:
            if current in seen:
                cycle = " -> ".join(seen + [current])
                raise node.error("parent", f"memory levels form a cycle ({cycle}), expected a "
                                           f"hierarchy ending at a level without parent")
            seen.append(current)
            current = parent.get(current)
