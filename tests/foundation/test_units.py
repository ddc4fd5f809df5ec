"""units.parse / format_quantity / format_exact: every kind, errors, round trips."""
from __future__ import annotations

import pytest

from memsim import units
from memsim.units import UnitError, format_exact, format_quantity, parse


@pytest.mark.parametrize("text, kind, value", [
    ("80 GiB", "bytes", 80 * 2**30),
    ("80 GB", "bytes", 80 * 10**9),
    ("228 KiB", "bytes", 228 * 1024),
    ("50 MB", "bytes", 50_000_000),
    ("1 TiB", "bytes", 2**40),
    ("1.5 TB", "bytes", 1_500_000_000_000),
    ("2 KB", "bytes", 2000),
    ("128B", "bytes", 128),
    ("3.35 TB/s", "bandwidth", 3.35e12),
    ("64 GiB/s", "bandwidth", 64 * 2**30),
    ("900 MB/s", "bandwidth", 9e8),
    ("989 TFLOP/s", "rate", 989e12),
    ("19.5 TFLOPS", "rate", 19.5e12),
    ("1979 TOPS", "rate", 1979e12),
    ("12 GFLOP/s", "rate", 12e9),
    ("660 TOP/s", "rate", 660e12),
    ("1.2 us", "time", 1.2e-6),
    ("1.2 µs", "time", 1.2e-6),
    ("3 ms", "time", 3e-3),
    ("40 ns", "time", 40e-9),
    ("2 s", "time", 2.0),
    ("1.98 GHz", "frequency", 1.98e9),
    ("700 MHz", "frequency", 7e8),
    ("1e3 B", "bytes", 1000),
])
def test_parse_units(text, kind, value):
    assert parse(text, kind) == pytest.approx(value, rel=1e-15)


def test_decimal_and_binary_prefixes_differ():
    assert parse("1 GB", "bytes") == 10**9
    assert parse("1 GiB", "bytes") == 2**30


def test_plain_numbers_are_base_units():
    assert parse(4096, "bytes") == 4096
    assert parse(2.5e12, "bandwidth") == 2.5e12
    assert parse("4096", "bytes") == 4096
    assert parse(1e-6, "time") == 1e-6


def test_whole_byte_counts_are_ints():
    assert isinstance(parse("80 GB", "bytes"), int)
    assert isinstance(parse("0.5 KiB", "bytes"), int)
    assert parse("0.5 KiB", "bytes") == 512
    assert parse("0.3 B", "bytes") == pytest.approx(0.3)


@pytest.mark.parametrize("value, kind, message", [
    ("80 GiB", "bandwidth", "found '80 GiB' ('GiB' is a unit of bytes), expected a bandwidth "
                            "quantity such as '3.35 TB/s' or '64 GiB/s'"),
    ("3 TB/s", "bytes", "found '3 TB/s' ('TB/s' is a unit of bandwidth), expected a bytes "
                        "quantity such as '80 GiB' or '50 MB'"),
    ("1 furlong", "time", "found '1 furlong' (unknown unit 'furlong'), expected a time "
                          "quantity such as '1.2 us' or '3 ms'"),
    ("fast", "rate", "found 'fast', expected a rate quantity such as '989 TFLOP/s' or "
                     "'1979 TOPS'"),
    (True, "bytes", "found boolean True, expected a bytes quantity such as '80 GiB' or '50 MB'"),
    (None, "time", "found NoneType None, expected a time quantity such as '1.2 us' or '3 ms'"),
    ([1], "bytes", "found list [1], expected a bytes quantity such as '80 GiB' or '50 MB'"),
    ("inf GB", "bytes", "found 'inf GB', expected a bytes quantity such as '80 GiB' or '50 MB'"),
    (float("nan"), "frequency", "found nan, expected a frequency quantity such as "
                                "'1.98 GHz' or '700 MHz' (finite)"),
])
def test_parse_errors(value, kind, message):
    with pytest.raises(UnitError) as info:
        parse(value, kind)
    assert str(info.value) == message


def test_unknown_kind_is_a_programming_error():
    with pytest.raises(ValueError, match="unknown quantity kind 'mass'"):
        parse("1 kg", "mass")
    with pytest.raises(ValueError, match="unknown quantity kind"):
        format_quantity(1, "mass")


@pytest.mark.parametrize("value, kind, text", [
    (228 * 1024, "bytes", "228 KiB"),
    (80 * 10**9, "bytes", "80 GB"),
    (50 * 2**20, "bytes", "50 MiB"),
    (2**40, "bytes", "1 TiB"),
    (1000, "bytes", "1 KB"),
    (1500, "bytes", "1500 B"),
    (0, "bytes", "0 B"),
    (3.35e12, "bandwidth", "3.35 TB/s"),
    (64e9, "bandwidth", "64 GB/s"),
    (989.4e12, "rate", "989.4 TFLOP/s"),
    (1979e12, "rate", "1979 TFLOP/s"),
    (4e-6, "time", "4 us"),
    (0.25, "time", "250 ms"),
    (1.98e9, "frequency", "1.98 GHz"),
])
def test_format_quantity(value, kind, text):
    assert format_quantity(value, kind) == text


def test_format_quantity_digits():
    assert format_quantity(3.3456e12, "bandwidth", digits=3) == "3.35 TB/s"
    assert format_quantity(1 / 3, "time", digits=2) == "330 ms"
    assert format_quantity(5e18, "bandwidth") == "5000000 TB/s"   # no exponent notation


@pytest.mark.parametrize("kind", ["bytes", "bandwidth", "rate", "time", "frequency"])
@pytest.mark.parametrize("value", [1, 7, 1000, 1024, 3 * 2**30, 123456789, 10**13])
def test_format_parse_round_trip_integers(kind, value):
    assert parse(format_exact(value, kind), kind) == value


@pytest.mark.parametrize("kind", ["bandwidth", "rate", "time", "frequency"])
@pytest.mark.parametrize("value", [3.35e12, 1 / 3, 2.7e-7, 0.1 + 0.2, 1.98e9, 7.999999999999999e-05,
                                   123.456789e-9, 6 * 2**30])
def test_format_exact_round_trips_floats(kind, value):
    text = format_exact(value, kind)
    assert parse(text, kind) == value


def test_format_exact_prefers_short_strings():
    assert format_exact(3.35e12, "bandwidth") == "3.35 TB/s"
    assert format_exact(parse("30 ns", "time"), "time") == "30 ns"
    assert format_exact(2.7e-7, "time") == "270 ns"
    assert format_exact(80 * 10**9, "bytes") == "80 GB"


def test_every_unit_symbol_parses_to_its_factor():
    for kind, table in units.KINDS.items():
        for symbol, factor in table.items():
            assert parse(f"1 {symbol}", kind) == pytest.approx(factor)
