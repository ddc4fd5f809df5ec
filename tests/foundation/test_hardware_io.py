"""hardware_to_dict / hardware_to_yaml / apply_overrides (Hardware.with_overrides)."""
from __future__ import annotations

import pytest

from memsim import SpecError, load_hardware
from memsim.hardware import (apply_overrides, hardware_to_dict, hardware_to_yaml, parse_hardware,
                             parse_override)


# A fixed document, so that exact values do not move when presets are calibrated.
TINY = """\
version: 1
name: tiny
kind: gpu
gpu: {sms: 2, max_blocks_per_sm: 4, clock: 1.5 GHz, launch_overhead: 4 us, source: s}
memories:
  - {name: sram, kind: scratchpad, capacity: 228 KiB, max_per_block: 227 KiB, instances: 2,
     per: sm, parent: hbm, bandwidth: 1 TB/s, latency: 30 ns, source: s}
  - {name: hbm, kind: dram, capacity: 80 GB, bandwidth: 3.35 TB/s, source: s}
  - {name: ssd, kind: flash, capacity: 1.5 TB, bandwidth: {read: 7 GB/s, write: 4 GB/s},
     source: s, flash: {page: 16 KiB, channels: 8, channel_bandwidth: 875 MB/s,
                        latency_to_first_byte: 80 us, queue_depth: 64, source: s}}
links:
  - {name: nvme, kind: nvme, between: [ssd, hbm], bandwidth: 7.877 GB/s, source: s}
compute:
  - name: tensor
    rates:
      bf16: {peak: 989.4 TFLOP/s, achievable: 746 TFLOP/s, achievable_source: m, source: s}
      int8: {peak: 1979 TOPS, unit: op, source: s}
"""


@pytest.fixture(scope="module")
def tiny():
    return parse_hardware(TINY, "tiny.yaml")


@pytest.fixture(scope="module")
def h100():
    return load_hardware("h100-sxm")


def test_dict_is_in_base_units(tiny):
    data = hardware_to_dict(tiny)
    levels = {m["name"]: m for m in data["memories"]}
    assert levels["hbm"]["capacity"] == 80_000_000_000
    assert levels["sram"]["capacity"] == 228 * 1024
    assert levels["sram"]["max_per_block"] == 227 * 1024
    assert levels["hbm"]["bandwidth"] == 3.35e12
    assert levels["ssd"]["bandwidth"] == {"read": 7e9, "write": 4e9}
    assert levels["ssd"]["flash"]["latency_to_first_byte"] == 80e-6
    assert levels["sram"]["latency"] == 30e-9
    assert data["gpu"]["clock"] == 1.5e9
    assert data["gpu"]["launch_overhead"] == 4e-6
    assert data["links"][0]["bandwidth"] == 7.877e9
    assert data["compute"][0]["rates"]["bf16"] == {"peak": 989.4e12, "achievable": 746e12,
                                                   "achievable_source": "m", "source": "s"}


def test_human_dict_uses_unit_strings(tiny):
    data = hardware_to_dict(tiny, human=True)
    levels = {m["name"]: m for m in data["memories"]}
    assert levels["hbm"]["capacity"] == "80 GB"
    assert levels["sram"]["capacity"] == "228 KiB"
    assert levels["ssd"]["capacity"] == "1500 GB"
    assert levels["hbm"]["bandwidth"] == "3.35 TB/s"
    assert levels["ssd"]["bandwidth"] == {"read": "7 GB/s", "write": "4 GB/s"}
    assert levels["sram"]["latency"] == "30 ns"
    assert data["compute"][0]["rates"]["int8"]["peak"] == "1979 TOP/s"


def test_tiny_round_trips(tiny):
    assert parse_hardware(tiny.to_yaml()) == tiny
    assert parse_hardware(TINY) == tiny


def test_yaml_has_header_and_reads_back(h100):
    text = hardware_to_yaml(h100)
    assert text.startswith("# memsim hardware description: h100-sxm")
    assert "between: [host, hbm]" in text
    assert parse_hardware(text) == h100


def test_raw_float_fallback_round_trips(h100):
    # a bandwidth that no short unit string reproduces exactly still reads back exactly
    odd = h100.with_overrides({"memories.hbm.bandwidth": 1 / 3 * 1e13})
    assert parse_hardware(odd.to_yaml()) == odd
    assert odd.memory("hbm").peak_read_bandwidth == 1 / 3 * 1e13


def test_brief_example(h100):
    variant = h100.with_overrides({"memories.sram.capacity": "256 KiB",
                                   "compute.tensor.rates.bf16_wgmma.peak": "1000 TFLOP/s",
                                   "gpu.sms": 114})
    assert variant.memory("sram").capacity_bytes == 256 * 1024
    assert variant.find_rate("bf16_wgmma")[1].peak == 1000e12
    assert variant.gpu.sms == 114
    # the original is untouched and everything else is equal
    assert h100.memory("sram").capacity_bytes == 228 * 1024
    assert variant.memory("hbm") == h100.memory("hbm")
    assert variant.origin == h100.origin


def test_brief_example_exactly(h100):
    variant = h100.with_overrides({"memories.sram.capacity": "128 KiB",
                                   "compute.tensor.rates.bf16_wgmma.peak": "700 TFLOP/s",
                                   "gpu.sms": 114})
    sram = variant.memory("sram")
    assert sram.capacity_bytes == 128 * 1024
    # the per-block reserve (228 KiB - 227 KiB) is kept
    assert sram.max_per_block_bytes == 127 * 1024


def test_new_sm_count_scales_what_is_per_sm(h100):
    variant = h100.with_overrides({"gpu.sms": 114})
    ratio = 114 / 132
    sram, old_sram = variant.memory("sram"), h100.memory("sram")
    assert sram.instances == 114
    assert sram.read_bandwidth_per_instance == pytest.approx(
        old_sram.read_bandwidth_per_instance, rel=1e-12)
    assert sram.capacity_bytes == old_sram.capacity_bytes
    tensor = variant.compute_unit("tensor")
    assert tensor.instances == 456                       # 4 tensor cores per SM
    for name, rate in tensor.rates.items():
        old = h100.compute_unit("tensor").rates[name]
        assert rate.peak == pytest.approx(old.peak * ratio, rel=1e-12)
        if old.achievable is not None:
            assert rate.achievable == pytest.approx(old.achievable * ratio, rel=1e-12)
    # what is not per SM stays
    assert variant.memory("l2") == h100.memory("l2")
    assert variant.memory("hbm") == h100.memory("hbm")
    # and what the user sets wins
    explicit = h100.with_overrides({"gpu.sms": 114,
                                    "compute.tensor.rates.bf16_wgmma.peak": "800 TFLOP/s"})
    assert explicit.find_rate("bf16_wgmma")[1].peak == 800e12
    assert explicit.find_rate("fp16_wgmma")[1].peak == pytest.approx(989.4e12 * ratio)


def test_new_peak_keeps_the_measured_efficiency(tiny):
    variant = tiny.with_overrides({"compute.tensor.rates.bf16.peak": "700 TFLOP/s"})
    rate = variant.find_rate("bf16")[1]
    assert rate.peak == 700e12
    assert rate.achievable == pytest.approx(700e12 * 746 / 989.4, rel=1e-12)
    explicit = tiny.with_overrides({"compute.tensor.rates.bf16.peak": "700 TFLOP/s",
                                    "compute.tensor.rates.bf16.achievable": "600 TFLOP/s"})
    assert explicit.find_rate("bf16")[1].achievable == 600e12


def test_explicit_max_per_block_wins(h100):
    variant = h100.with_overrides({"memories.sram.capacity": "128 KiB",
                                   "memories.sram.max_per_block": "100 KiB"})
    assert variant.memory("sram").max_per_block_bytes == 100 * 1024


def test_override_can_remove_an_optional_field(h100):
    variant = h100.with_overrides({"memories.sram.capacity": "128 KiB",
                                   "memories.sram.max_per_block": None})
    assert variant.memory("sram").max_per_block_bytes is None


def test_override_one_direction_of_a_scalar_bandwidth(h100):
    variant = apply_overrides(h100, {"memories.hbm.bandwidth.read": "4 TB/s",
                                     "links.pcie.bandwidth.backward": "32 GB/s"})
    hbm, old = variant.memory("hbm"), h100.memory("hbm")
    assert (hbm.peak_read_bandwidth, hbm.peak_write_bandwidth) == (4e12, old.peak_write_bandwidth)
    pcie, old_pcie = variant.link("pcie"), h100.link("pcie")
    assert (pcie.peak_bandwidth_ab, pcie.peak_bandwidth_ba) == (old_pcie.peak_bandwidth_ab, 32e9)
    # the measured achievable figure keeps its efficiency in the changed direction only
    assert hbm.read_bandwidth == pytest.approx(4e12 * 2.98 / 3.35, rel=1e-12)
    assert hbm.write_bandwidth == old.write_bandwidth
    assert pcie.bandwidth_ab == old_pcie.bandwidth_ab
    assert pcie.bandwidth_ba == pytest.approx(32e9 * 55.1 / 64, rel=1e-12)


def test_achievable_bandwidth_overrides_and_round_trip(h100):
    explicit = h100.with_overrides({"memories.hbm.bandwidth": "4 TB/s",
                                    "memories.hbm.achievable_bandwidth": "3 TB/s"})
    assert explicit.memory("hbm").read_bandwidth == explicit.memory("hbm").write_bandwidth == 3e12
    assert parse_hardware(explicit.to_yaml()) == explicit
    dropped = h100.with_overrides({"memories.hbm.achievable_bandwidth": None,
                                   "memories.hbm.achievable_source": None})
    assert dropped.memory("hbm").read_bandwidth == 3.35e12
    with pytest.raises(SpecError, match="expected at most the peak bandwidth"):
        h100.with_overrides({"links.pcie.achievable_bandwidth": "65 GB/s"})
    with pytest.raises(SpecError, match="achievable_source"):
        h100.with_overrides({"memories.hbm.achievable_source": None})


def test_l2_reuse_capacity_is_what_the_lru_uses(h100):
    l2 = h100.memory("l2")
    assert l2.capacity_bytes == 50 * 2**20 and l2.lru_capacity_bytes == 39.5e6
    assert h100.memory("hbm").lru_capacity_bytes == h100.memory("hbm").capacity_bytes
    assert parse_hardware(h100.to_yaml()) == h100
    full = h100.with_overrides({"memories.l2.cache.reuse_capacity": None,
                                "memories.l2.cache.reuse_source": None})
    assert full.memory("l2").lru_capacity_bytes == 50 * 2**20
    with pytest.raises(SpecError, match="reuse_source"):
        h100.with_overrides({"memories.l2.cache.reuse_source": None})
    with pytest.raises(SpecError, match="expected at most the capacity"):
        h100.with_overrides({"memories.l2.cache.reuse_capacity": "60 MB"})


def test_override_with_no_changes_is_equal(h100):
    assert h100.with_overrides({}) == h100


@pytest.mark.parametrize("overrides, message", [
    ({"memories.sram.capacity": "12 GB/s"},
     "overrides: memories.sram.capacity: found '12 GB/s' ('GB/s' is a unit of bandwidth), "
     "expected a bytes quantity such as '80 GiB' or '50 MB'"),
    ({"memories.sram.capacity": "0 B"},
     "overrides: memories.sram.capacity: found '0 B', expected a value > 0"),
    ({"memories.sram.capacity": "128 KiB", "memories.sram.max_per_block": "200 KiB"},
     "overrides: memories.sram.max_per_block: found 204800 B, expected at most the capacity "
     "(131072 B)"),
    ({"memories.sramx.capacity": "1 KiB"},
     "overrides: memories.sramx.capacity: found no entry named 'sramx' in memories, expected "
     "one of: sram, l2, hbm, host, ssd"),
    ({"gpu.smz": 3},
     "overrides: gpu.smz: unknown key 'smz', expected one of: clock, launch_overhead, "
     "max_blocks_per_sm, max_threads_per_sm, registers_per_sm, sms, source; did you mean 'sms'?"),
    ({"gpu.sms": "114"}, "overrides: gpu.sms: found str '114', expected an integer"),
    ({"fabric.clock": "1 GHz"},
     "overrides: fabric.clock: found no section 'fabric' in the top level, expected one of: "
     "version, name, kind, description, sources, gpu, memories, links, compute"),
    ({"compute.tensor.rates.nope.peak": 1},
     "overrides: compute.tensor.rates.nope.peak: found no section 'nope' in "
     "compute[0].rates, expected one of: bf16_wgmma, fp16_wgmma, bf16_mma, fp16_mma, "
     "fp8_wgmma, tf32_wgmma, int8_wgmma"),
    ({"memories.hbm.parent": "sram"},
     "overrides (memories.hbm.parent): memories[0].parent: memory levels form a cycle "
     "(sram -> l2 -> hbm -> sram), expected a hierarchy ending at a level without parent"),
    ({"memories..capacity": 1},
     "overrides: found 'memories..capacity', expected a dotted path such as "
     "'memories.sram.capacity'"),
])
def test_override_errors_name_the_override(h100, overrides, message):
    with pytest.raises(SpecError) as info:
        h100.with_overrides(overrides)
    assert str(info.value) == message


@pytest.mark.parametrize("text, expected", [
    ("memories.sram.capacity=128 KiB", ("memories.sram.capacity", "128 KiB")),
    ("gpu.sms=114", ("gpu.sms", 114)),
    ("links.p2p.peer_to_peer=true", ("links.p2p.peer_to_peer", True)),
    ("memories.sram.max_per_block=", ("memories.sram.max_per_block", None)),
    (" gpu.clock = 1.5 GHz", ("gpu.clock", "1.5 GHz")),
])
def test_parse_override(text, expected):
    assert parse_override(text) == expected


def test_parse_override_needs_an_equals_sign():
    with pytest.raises(SpecError, match="expected KEY=VALUE"):
        parse_override("gpu.sms")


def test_hardware_is_immutable(h100):
    with pytest.raises(AttributeError):
        h100.name = "other"          # frozen dataclass
    with pytest.raises(TypeError):
        h100.compute[0].rates["x"] = None   # read-only mapping
