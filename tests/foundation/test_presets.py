"""Shipped hardware presets: they load, round-trip, keep the contract level names, and carry the
datasheet/paper numbers they claim (checked against ../shared/research/papers.md figures)."""
from __future__ import annotations

import json
from dataclasses import replace

import pytest

from memsim import load_hardware
from memsim.units import format_quantity
from memsim.hardware import hardware_from_data, hardware_to_dict, parse_hardware, preset_names
from memsim.hardware.loader import PRESET_DIR

REQUIRED = {"h100-sxm", "h200", "a100-80gb", "rtx-4090", "t4", "m1-max", "csd", "dataflow"}
GPUS = ["h100-sxm", "h200", "a100-80gb", "rtx-4090", "t4", "csd"]
WITH_HOST = ["h100-sxm", "t4", "csd"]


def test_required_presets_exist():
    assert REQUIRED <= set(preset_names())


@pytest.mark.parametrize("name", preset_names())
def test_preset_loads_and_names_itself(name):
    hw = load_hardware(name)
    assert hw.name == name
    assert hw.origin == name
    assert hw.description and hw.sources


@pytest.mark.parametrize("name", preset_names())
def test_preset_round_trips_through_yaml(name):
    hw = load_hardware(name)
    text = hw.to_yaml()
    again = parse_hardware(text, f"{name}.to_yaml")
    assert again == hw
    assert again.to_yaml() == text          # canonical: a fixed point


@pytest.mark.parametrize("name", preset_names())
def test_preset_round_trips_through_json_base_units(name):
    hw = load_hardware(name)
    data = json.loads(json.dumps(hardware_to_dict(hw)))
    assert hardware_from_data(data, name) == hw


@pytest.mark.parametrize("name", preset_names())
def test_every_number_has_a_source(name):
    hw = load_hardware(name)
    for level in hw.memories:
        assert level.source.strip(), level.name
        if level.flash:
            assert level.flash.source.strip(), level.name
    for link in hw.links:
        assert link.source.strip(), link.name
    for unit in hw.compute:
        assert unit.source.strip(), unit.name
        for rate in unit.rates.values():
            assert rate.source.strip(), rate.name
    if hw.gpu:
        assert hw.gpu.source.strip()
    if hw.fabric:
        assert hw.fabric.source.strip()


@pytest.mark.parametrize("name", GPUS)
def test_gpu_levels_follow_the_contract(name):
    hw = load_hardware(name)
    assert [m.name for m in hw.path_to_root("sram")] == ["sram", "l2", "hbm"]
    sram = hw.memory("sram")
    assert sram.kind == "scratchpad" and sram.per == "sm"
    assert sram.instances == hw.gpu.sms
    assert sram.max_per_block_bytes <= sram.capacity_bytes
    assert hw.memory("l2").is_cache
    # shared memory moves 128 B per clock per SM: the preset's aggregate must say so (±0.5 %)
    assert sram.read_bandwidth == pytest.approx(128 * hw.gpu.sms * hw.gpu.clock_hz, rel=5e-3)


@pytest.mark.parametrize("name", WITH_HOST)
def test_host_presets_have_host_ssd_and_links(name):
    hw = load_hardware(name)
    assert hw.memory("host").kind == "dram"
    ssd = hw.memory("ssd")
    assert ssd.kind == "flash" and ssd.flash is not None
    pcie = hw.link_between("host", "hbm")
    assert pcie is not None and pcie.kind == "pcie"
    nvme = hw.link_between("host", "ssd")
    assert nvme is not None and nvme.kind == "nvme"


@pytest.mark.parametrize("name, hbm_bytes, hbm_bw, bf16, ridge", [
    ("a100-80gb", 80e9, 2.039e12, 312e12, 153),
    ("h100-sxm", 80e9, 3.35e12, 989.4e12, 295),
    ("h200", 141e9, 4.8e12, 989.4e12, 206),
])
def test_vendor_figures_and_ridge_points(name, hbm_bytes, hbm_bw, bf16, ridge):
    """papers.md §11: capacities, dense bf16 peaks, and HBM bandwidths with the derived ridge
    points. The HBM ``bandwidth`` is the datasheet peak; a preset may carry a *measured*
    ``achievable_bandwidth`` next to it, below the peak and with its source."""
    hw = load_hardware(name)
    hbm = hw.memory("hbm")
    assert hbm.capacity_bytes == hbm_bytes
    peak = max(r.peak for u in hw.compute for r in u.rates.values() if r.dtype == "bf16")
    assert peak == bf16
    assert round(bf16 / hbm_bw) == ridge
    assert hbm.peak_read_bandwidth == hbm_bw
    assert round(peak / hbm.peak_read_bandwidth) == ridge
    if hbm.achievable_read_bandwidth is None:
        assert hbm.read_bandwidth == hbm_bw
    else:
        assert 0.5 * hbm_bw < hbm.read_bandwidth < hbm_bw
        assert "measured" in hbm.source or "calibrat" in hbm.achievable_source


def test_achievable_rates_are_below_peak_and_sourced():
    for name in preset_names():
        for unit in load_hardware(name).compute:
            for rate in unit.rates.values():
                if rate.achievable is not None:
                    assert rate.achievable <= rate.peak and rate.achievable_source


def test_achievable_bandwidths_are_below_peak_and_sourced():
    for name in preset_names():
        hw = load_hardware(name)
        for level in hw.memories:
            if level.achievable_read_bandwidth is not None:
                assert level.achievable_source
                assert level.read_bandwidth == level.achievable_read_bandwidth \
                    <= level.peak_read_bandwidth
                assert level.write_bandwidth == level.achievable_write_bandwidth \
                    <= level.peak_write_bandwidth
        for link in hw.links:
            if link.achievable_bandwidth_ab is not None:
                assert link.achievable_source
                assert link.bandwidth(link.a, link.b) == link.achievable_bandwidth_ab \
                    <= link.peak_bandwidth(link.a, link.b)
                assert link.bandwidth(link.b, link.a) == link.achievable_bandwidth_ba \
                    <= link.peak_bandwidth(link.b, link.a)


def test_h100_and_h200_share_the_die():
    h100, h200 = load_hardware("h100-sxm"), load_hardware("h200")
    for field in ("sms", "max_blocks_per_sm", "max_threads_per_sm", "registers_per_sm",
                  "clock_hz"):
        assert getattr(h100.gpu, field) == getattr(h200.gpu, field)
    assert replace(h100.memory("sram"), source="") == replace(h200.memory("sram"), source="")
    # the L2 each device reports (cudaDeviceProp): 50 MiB on the H100 SXM, 60 MiB on the H200
    assert h100.memory("l2").capacity_bytes == 50 * 2**20
    assert h200.memory("l2").capacity_bytes == 60 * 2**20


def test_h200_holds_its_measured_ceilings():
    """The h200 preset's measured values are what memsim.validation.calibrate.ceilings
    computes from data/h200 (3 significant digits in the YAML)."""
    import math
    from memsim.validation.calibrate import ceilings
    hw, got = load_hardware("h200"), ceilings("h200")
    preset = {"hbm_bandwidth": hw.memory("hbm").read_bandwidth,
              "launch_overhead": hw.gpu.launch_overhead_s,
              "l2_capacity": hw.memory("l2").capacity_bytes,
              "bf16_wgmma": hw.find_rate("bf16_wgmma")[1].achievable,
              "fp16_wgmma": hw.find_rate("fp16_wgmma")[1].achievable,
              "l2_latency": hw.memory("l2").latency_s,
              "hbm_latency": hw.memory("hbm").latency_s,
              "bf16_mma_peak": hw.find_rate("bf16_mma")[1].peak,
              "fp16_mma_peak": hw.find_rate("fp16_mma")[1].peak}
    assert set(preset) == set(got)
    for key, value in preset.items():
        assert math.isclose(value, got[key][0], rel_tol=0.01), (key, value, got[key][0])


def test_h100_host_is_pcie_gen5_x16():
    hw = load_hardware("h100-sxm")
    pcie = hw.link("pcie")
    # 64 GB/s per direction is the Gen5 x16 peak; a measured achievable figure sits below it
    assert pcie.peak_bandwidth("host", "hbm") == pcie.peak_bandwidth("hbm", "host") == 64e9
    assert 0 < pcie.bandwidth("host", "hbm") <= 64e9
    assert 0 < pcie.bandwidth("hbm", "host") <= 64e9
    assert "Gen5 x16" in pcie.source


def test_t4_is_flexgens_testbed():
    hw = load_hardware("t4")
    assert hw.memory("hbm").capacity_bytes == 16 * 2**30
    assert hw.memory("host").capacity_bytes == 208e9
    ssd = hw.memory("ssd")
    assert ssd.capacity_bytes == 1.5e12
    assert (ssd.read_bandwidth, ssd.write_bandwidth) == (2e9, 1e9)
    nvme = hw.link("nvme")
    assert nvme.bandwidth("ssd", "host") == 2e9 and nvme.bandwidth("host", "ssd") == 1e9
    assert ssd.flash.internal_read_bandwidth == ssd.read_bandwidth
    assert hw.link("pcie").bandwidth_ab <= 8e9 * 16 * 128 / 130 / 8 * 1.001   # Gen3 x16 peak


def test_m1_max_unified_memory_and_flash():
    hw = load_hardware("m1-max")
    assert not hw.has_memory("hbm")
    assert hw.memory("dram").read_bandwidth == 400e9
    ssd = hw.memory("ssd")
    assert ssd.read_bandwidth == 6 * 2**30
    assert ssd.flash.internal_read_bandwidth == 6 * 2**30
    assert hw.link_between("ssd", "dram").bandwidth("ssd", "dram") == 6 * 2**30


def test_csd_internal_bandwidth_exceeds_its_link():
    """InstInfer's premise: the drive's internal flash bandwidth beats its PCIe link."""
    hw = load_hardware("csd")
    flash = hw.memory("ssd").flash
    assert flash.compute == "csd_engine"
    engine = hw.compute_unit("csd_engine")
    assert engine.rates
    assert flash.internal_read_bandwidth > hw.link("nvme").bandwidth("ssd", "host")
    assert hw.link("p2p").peer_to_peer
    assert hw.memory("hbm").capacity_bytes == 48 * 2**30


def test_dataflow_fabric():
    hw = load_hardware("dataflow")
    assert hw.kind == "dataflow"
    kinds = {unit.kind for unit in hw.fabric.units.values()}
    assert {"map", "reduce", "scan", "matvec", "divide", "exp", "repeat"} <= kinds
    assert hw.fabric.channel.depth >= 1
    sram = hw.memory("sram")
    # bandwidth given per instance in the file, stored aggregate
    assert sram.read_bandwidth_per_instance == 64e9
    assert sram.read_bandwidth == 64 * 64e9


def test_preset_files_are_the_package_data():
    assert sorted(p.stem for p in PRESET_DIR.glob("*.yaml")) == preset_names()
