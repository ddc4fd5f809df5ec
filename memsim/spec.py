"""Strict YAML loading with error locations.

``load_document`` parses YAML into plain Python values and remembers the line of every node, and
refuses duplicate keys. ``Node`` gives typed, located access to a mapping: each accessor names the
YAML path and the line in its error, and ``Node.close()`` rejects keys nobody asked for (typos).

    doc = load_document(path)
    root = doc.root()
    name = root.req("name", str)
    bw = root.req("bandwidth", "bandwidth", positive=True)
    root.close()
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import yaml

from . import units
from .errors import SpecError

__all__ = ["Document", "Node", "load_document", "document_from_data", "join_path", "preset_names",
           "find_preset"]

_MISSING = object()


def join_path(path: str, key: object) -> str:
    """YAML path of a child: ``memories`` + 0 -> ``memories[0]``; + 'x' -> ``memories.x``."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


class _LocatingLoader(yaml.SafeLoader):
    """SafeLoader that records the line of every node and refuses duplicate keys."""


def _construct_mapping(loader: _LocatingLoader, node: yaml.MappingNode, deep: bool = False):
    loader.flatten_mapping(node)
    result: dict = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        try:
            hash(key)
        except TypeError:
            raise SpecError(f"found an unhashable key {key!r}, expected a plain key",
                            file=loader.memsim_file, line=key_node.start_mark.line + 1) from None
        if key in result:
            first = loader.memsim_lines.get((id(result), key))
            raise SpecError(f"duplicate key {key!r} (first given on line {first}), expected "
                            f"each key once", file=loader.memsim_file,
                            line=key_node.start_mark.line + 1)
        result[key] = loader.construct_object(value_node, deep=True)
        loader.memsim_lines[id(result), key] = key_node.start_mark.line + 1
    loader.memsim_lines[id(result), None] = node.start_mark.line + 1
    loader.memsim_keep.append(result)
    return result


def _construct_sequence(loader: _LocatingLoader, node: yaml.SequenceNode, deep: bool = False):
    result = [loader.construct_object(child, deep=True) for child in node.value]
    for index, child in enumerate(node.value):
        loader.memsim_lines[id(result), index] = child.start_mark.line + 1
    loader.memsim_lines[id(result), None] = node.start_mark.line + 1
    loader.memsim_keep.append(result)
    return result


_LocatingLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_LocatingLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG,
                                _construct_sequence)


@dataclass
class Document:
    """A parsed YAML document: its data, its file name and the line of each node."""

    data: Any
    file: str | None = None
    lines: dict = field(default_factory=dict)
    # keeps the containers alive so that the id() keys in ``lines`` stay valid
    keep: list = field(default_factory=list, repr=False)

    def line_of(self, container: object, key: object = None) -> int | None:
        return self.lines.get((id(container), key))

    def error(self, message: str, container: object = None, key: object = None,
              path: str | None = None) -> SpecError:
        line = self.line_of(container, key) if container is not None else None
        if line is None and container is not None:
            line = self.line_of(container, None)
        return SpecError(message, file=self.file, line=line, path=path)

    def root(self, what: str = "document") -> "Node":
        if not isinstance(self.data, dict):
            found = "an empty document" if self.data is None else _describe(self.data)
            raise SpecError(f"found {found}, expected a mapping ({what})", file=self.file, line=1)
        return Node(self, self.data, "")


def load_document(source: str | Path, text: str | None = None) -> Document:
    """Parse a YAML file (or ``text``, named ``source``) strictly, keeping line numbers."""
    name = str(source)
    if text is None:
        try:
            text = Path(source).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise SpecError("file not found, expected a readable YAML file", file=name) from None
        except (IsADirectoryError, PermissionError, UnicodeDecodeError) as exc:
            raise SpecError(f"cannot read ({exc.__class__.__name__}), expected a UTF-8 YAML file",
                            file=name) from None
    loader = _LocatingLoader(text)
    loader.memsim_file = name
    loader.memsim_lines = {}
    loader.memsim_keep = []
    try:
        data = loader.get_single_data()
    except SpecError:
        raise
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise SpecError(f"invalid YAML: {problem}", file=name,
                        line=mark.line + 1 if mark else None) from None
    finally:
        loader.dispose()
    return Document(data, name, loader.memsim_lines, loader.memsim_keep)


def preset_names(directory: Path) -> list[str]:
    """Names of the YAML presets shipped in ``directory`` (file stems, sorted)."""
    return sorted(p.stem for p in directory.glob("*.yaml"))


def find_preset(ref: str, directory: Path) -> Path | None:
    """The file a preset-or-path reference names: ``ref`` itself when it looks like a path
    (contains '/' or ends in .yaml/.yml), else ``directory/ref.yaml`` when that preset is
    shipped; ``None`` for an unknown preset name (the caller lists the presets)."""
    if "/" in ref or ref.endswith((".yaml", ".yml")):
        return Path(ref)
    preset = directory / f"{ref}.yaml"
    return preset if preset.exists() else None


def document_from_data(data: Any, name: str = "<data>") -> Document:
    """Wrap already-parsed data (e.g. from the Python API) as a Document without line numbers."""
    return Document(data, name, {}, [])


def _describe(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {value}"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false",
               dict: "a mapping", list: "a list"}


class Node:
    """Typed, located access to one mapping of a Document.

    Every key read through ``req``/``opt`` is remembered; ``close`` reports the first key that was
    never read as unknown, with a suggestion when it looks like a typo of a known key.
    """

    def __init__(self, doc: Document, data: dict, path: str):
        self.doc = doc
        self.data = data
        self.path = path
        self._used: set = set()

    # -- errors ---------------------------------------------------------------------------------
    def error(self, key: object, message: str) -> SpecError:
        return self.doc.error(message, self.data, key, join_path(self.path, key) if key is not None
                              else (self.path or None))

    # -- access ---------------------------------------------------------------------------------
    def has(self, key: str) -> bool:
        return key in self.data

    def keys(self) -> list:
        return list(self.data.keys())

    def req(self, key: str, kind: Any, **checks: Any) -> Any:
        """A required field. ``kind`` is a Python type, a unit kind ('bytes', 'bandwidth', ...),
        a tuple of allowed strings (an enum), or a callable ``(node, key, value) -> value``."""
        if key not in self.data:
            self._used.add(key)
            expected = _expected(kind)
            raise self.doc.error(f"missing required field {key!r} ({expected})", self.data, None,
                                 self.path or None)
        return self._get(key, kind, **checks)

    def opt(self, key: str, kind: Any, default: Any = None, **checks: Any) -> Any:
        """An optional field; ``default`` when absent (or when given as null)."""
        if key not in self.data or self.data[key] is None:
            self._used.add(key)
            return default
        return self._get(key, kind, **checks)

    def version(self, supported: tuple[int, ...], required: bool = True) -> int:
        """The document's ``version:`` (required, or 1 when absent if not ``required``),
        checked against the versions this reader supports."""
        value = self.req("version", int) if required else self.opt("version", int, 1)
        if value not in supported:
            raise self.error("version", f"found version {value}, expected one of "
                                        f"{', '.join(map(str, supported))}")
        return value

    def child(self, key: str, required: bool = True) -> "Node | None":
        """A nested mapping."""
        self._used.add(key)
        if key not in self.data or self.data[key] is None:
            if required:
                raise self.doc.error(f"missing required section {key!r} (a mapping)", self.data,
                                     None, self.path or None)
            return None
        value = self.data[key]
        if not isinstance(value, dict):
            raise self.error(key, f"found {_describe(value)}, expected a mapping")
        return Node(self.doc, value, join_path(self.path, key))

    def children(self, key: str, required: bool = True, allow_empty: bool = False
                 ) -> list["Node"]:
        """A list of mappings."""
        self._used.add(key)
        if key not in self.data or self.data[key] is None:
            if required:
                raise self.doc.error(f"missing required section {key!r} (a list of mappings)",
                                     self.data, None, self.path or None)
            return []
        value = self.data[key]
        if not isinstance(value, list):
            raise self.error(key, f"found {_describe(value)}, expected a list of mappings")
        if not value and not allow_empty:
            raise self.error(key, "found an empty list, expected at least one entry")
        nodes = []
        for index, item in enumerate(value):
            path = join_path(join_path(self.path, key), index)
            if not isinstance(item, dict):
                raise self.doc.error(f"found {_describe(item)}, expected a mapping", value, index,
                                     path)
            nodes.append(Node(self.doc, item, path))
        return nodes

    def mapping_items(self, key: str, required: bool = True) -> Iterator[tuple[str, "Node"]]:
        """A mapping of name -> mapping (e.g. ``rates: {bf16_wgmma: {...}}``)."""
        node = self.child(key, required=required)
        if node is None:
            return iter(())
        items = []
        for name, value in node.data.items():
            node._used.add(name)
            if not isinstance(value, dict):
                raise node.error(name, f"found {_describe(value)}, expected a mapping")
            items.append((str(name), Node(self.doc, value, join_path(node.path, name))))
        return iter(items)

    def close(self) -> None:
        """Reject keys that no accessor asked for."""
        for key in self.data:
            if key not in self._used:
                known = sorted(str(k) for k in self._used)
                close = difflib.get_close_matches(str(key), known, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise self.error(key, f"unknown key {key!r}, expected one of: "
                                      f"{', '.join(known)}{hint}")

    # -- conversion -----------------------------------------------------------------------------
    def _get(self, key: str, kind: Any, *, positive: bool = False, nonnegative: bool = False,
             minimum: float | None = None, maximum: float | None = None) -> Any:
        self._used.add(key)
        value = self.data[key]
        if callable(kind) and not isinstance(kind, type):
            return kind(self, key, value)
        if isinstance(kind, tuple):
            if value not in kind:
                close = difflib.get_close_matches(str(value), [str(k) for k in kind], n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise self.error(key, f"found {_describe(value)}, expected one of: "
                                      f"{', '.join(map(str, kind))}{hint}")
            return value
        if isinstance(kind, str):
            try:
                value = units.parse(value, kind)
            except units.UnitError as exc:
                raise self.error(key, str(exc)) from None
        elif kind is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise self.error(key, f"found {_describe(value)}, expected a number")
            value = float(value)
        elif kind is int:
            if isinstance(value, bool) or not isinstance(value, int):
                raise self.error(key, f"found {_describe(value)}, expected an integer")
        elif kind is bool:
            if not isinstance(value, bool):
                raise self.error(key, f"found {_describe(value)}, expected true or false")
        elif kind is str:
            if not isinstance(value, str) or not value.strip():
                raise self.error(key, f"found {_describe(value)}, expected a non-empty string")
        elif kind in (list, dict):
            if not isinstance(value, kind):
                raise self.error(key, f"found {_describe(value)}, expected {_TYPE_NAMES[kind]}")
        else:
            raise TypeError(f"unsupported field kind {kind!r}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            # name the value as the user wrote it ('-64 KiB', not -65536)
            shown = repr(self.data[key]) if isinstance(self.data[key], str) else repr(value)
            if positive and not value > 0:
                raise self.error(key, f"found {shown}, expected a value > 0")
            if nonnegative and value < 0:
                raise self.error(key, f"found {shown}, expected a value >= 0")
            if minimum is not None and value < minimum:
                raise self.error(key, f"found {shown}, expected a value >= {minimum}")
            if maximum is not None and value > maximum:
                raise self.error(key, f"found {shown}, expected a value <= {maximum}")
        return value


def _expected(kind: Any) -> str:
    if isinstance(kind, str):
        return units.describe_kind(kind)
    if isinstance(kind, tuple):
        return "one of: " + ", ".join(map(str, kind))
    if isinstance(kind, type):
        return _TYPE_NAMES.get(kind, kind.__name__)
    return getattr(kind, "expected", "a value")
