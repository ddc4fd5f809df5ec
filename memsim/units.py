"""Parse and format physical quantities at the boundary (YAML, CLI).

Inside memsim every quantity is a float or int in SI base units: bytes, seconds, bytes/s,
FLOP/s (or OP/s), Hz. Decimal prefixes (KB, MB, GB, TB) are powers of 1000 and binary prefixes
(KiB, MiB, GiB, TiB) powers of 1024, everywhere. A plain number means the base unit.

>>> parse("80 GiB", "bytes")
85899345920
>>> parse("3.35 TB/s", "bandwidth")
3350000000000.0
>>> format_quantity(85899345920, "bytes")
'80 GiB'
"""
from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Union

__all__ = ["KINDS", "UnitError", "parse", "format_quantity", "format_exact", "describe_kind"]

Number = Union[int, float]

_DEC = {"": 1, "K": 1e3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15}
_BIN = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50}


def _table(base: str, prefixes: dict[str, float], *, suffix: str = "") -> dict[str, float]:
    return {f"{p}{base}{suffix}": float(v) for p, v in prefixes.items()}


# unit symbol -> factor to the base unit, one table per kind of quantity
KINDS: dict[str, dict[str, float]] = {
    "bytes": {**_table("B", _DEC), **_table("B", _BIN)},
    "bandwidth": {**_table("B", _DEC, suffix="/s"), **_table("B", _BIN, suffix="/s")},
    "rate": {
        **_table("FLOP", _DEC, suffix="/s"),
        **_table("FLOPS", _DEC),
        **_table("OP", _DEC, suffix="/s"),
        **_table("OPS", _DEC),
        **{f"{p}OPS": float(v) for p, v in _DEC.items()},
    },
    "time": {"ps": 1e-12, "ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0},
    "frequency": _table("Hz", _DEC),
}

_EXAMPLES = {
    "bytes": "'80 GiB' or '50 MB'",
    "bandwidth": "'3.35 TB/s' or '64 GiB/s'",
    "rate": "'989 TFLOP/s' or '1979 TOPS'",
    "time": "'1.2 us' or '3 ms'",
    "frequency": "'1.98 GHz' or '700 MHz'",
}

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_PATTERN = re.compile(rf"^\s*({_NUMBER})\s*([^\s\d][^\s]*)?\s*$")


class UnitError(ValueError):
    """A string that is not a quantity of the expected kind."""


def describe_kind(kind: str) -> str:
    """A short human phrase for a kind of quantity, with examples."""
    return f"a {kind} quantity such as {_EXAMPLES[kind]}" if kind in _EXAMPLES else kind


def _which_kind(unit: str) -> str | None:
    for kind, table in KINDS.items():
        if unit in table:
            return kind
    return None


def parse(value: object, kind: str) -> Number:
    """Parse ``value`` as a quantity of ``kind`` and return it in SI base units.

    Plain ints and floats are returned unchanged (already base units). Byte counts come back as
    ``int`` when they are whole. Raises ``UnitError`` with a message that says what was expected.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown quantity kind {kind!r}; known: {', '.join(KINDS)}")
    if isinstance(value, bool):
        raise UnitError(f"found boolean {value!r}, expected {describe_kind(kind)}")
    if isinstance(value, (int, float)):
        number = value
    elif isinstance(value, str):
        match = _PATTERN.match(value)
        if not match:
            raise UnitError(f"found {value!r}, expected {describe_kind(kind)}")
        number_text, unit = match.group(1), match.group(2) or ""
        number = float(number_text)
        if unit:
            table = KINDS[kind]
            if unit not in table:
                other = _which_kind(unit)
                hint = f" ({unit!r} is a unit of {other})" if other else f" (unknown unit {unit!r})"
                raise UnitError(f"found {value!r}{hint}, expected {describe_kind(kind)}")
            # exact decimal product, rounded once: '2.039 TB/s' is exactly 2.039e12 and
            # '30 ns' exactly 3e-08 (a float product would be off by an ulp)
            if math.isfinite(number):
                number = float(Decimal(number_text) * Decimal(repr(table[unit])))
            else:
                number = number * table[unit]
    else:
        raise UnitError(f"found {type(value).__name__} {value!r}, expected {describe_kind(kind)}")
    if isinstance(number, float) and not math.isfinite(number):
        raise UnitError(f"found {value!r}, expected {describe_kind(kind)} (finite)")
    if kind == "bytes" and float(number).is_integer():
        return int(number)
    return number


_FORMAT_UNITS = {
    # bytes: binary and decimal units interleaved by size; the largest exact divisor wins
    "bytes": [("TiB", 2**40), ("TB", 10**12), ("GiB", 2**30), ("GB", 10**9), ("MiB", 2**20),
              ("MB", 10**6), ("KiB", 2**10), ("KB", 10**3), ("B", 1)],
    "bandwidth": [("TB/s", 1e12), ("GB/s", 1e9), ("MB/s", 1e6), ("KB/s", 1e3), ("B/s", 1)],
    "rate": [("TFLOP/s", 1e12), ("GFLOP/s", 1e9), ("MFLOP/s", 1e6),
             ("FLOP/s", 1)],
    "time": [("s", 1.0), ("ms", 1e-3), ("us", 1e-6), ("ns", 1e-9), ("ps", 1e-12)],
    "frequency": [("GHz", 1e9), ("MHz", 1e6), ("kHz", 1e3), ("Hz", 1)],
}


def format_quantity(value: Number, kind: str, digits: int = 4) -> str:
    """Format a base-unit value with the largest unit that keeps the number >= 1.

    Whole byte counts print exactly, in the largest binary or decimal unit that divides them
    (``'228 KiB'``, ``'80 GB'``), so that hardware files written by ``to_yaml`` read back to the
    same integers. Other kinds keep ``digits`` significant digits (see ``format_exact``).
    """
    if kind not in _FORMAT_UNITS:
        raise ValueError(f"unknown quantity kind {kind!r}")
    if value == 0:
        return f"0 {_FORMAT_UNITS[kind][-1][0]}"
    magnitude = abs(value)
    if kind == "bytes" and float(value).is_integer():
        whole = int(value)
        for unit, factor in _FORMAT_UNITS[kind]:
            if abs(whole) >= factor and whole % factor == 0:
                return f"{whole // factor} {unit}"
        return f"{whole} B"
    for unit, factor in _FORMAT_UNITS[kind]:
        if magnitude >= factor:
            return f"{_significant(value / factor, digits)} {unit}"
    unit, factor = _FORMAT_UNITS[kind][-1]
    return f"{_significant(value / factor, digits)} {unit}"


def _significant(number: float, digits: int) -> str:
    """``number`` rounded to ``digits`` significant digits, without exponent notation."""
    text = f"{number:.{digits}g}"
    if "e" in text:
        text = f"{float(text):f}"
        text = text.rstrip("0").rstrip(".") if "." in text else text
    return text


def format_exact(value: Number, kind: str) -> Number | str:
    """The shortest unit string that ``parse`` turns back into exactly ``value``.

    Tries 4 to 17 significant digits; when no unit string reads back bit-for-bit (rare float
    quotients), returns ``value`` itself, a plain number in base units, which is also exact.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number, found {type(value).__name__}")
    for digits in range(4, 18):
        text = format_quantity(value, kind, digits)
        if parse(text, kind) == value and type(parse(text, kind)) is type(value):
            return text
    return value
