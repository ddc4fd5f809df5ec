"""Schedule and hardware options added for the GPU validation (issue 5): TMA-multicast
clusters of gemm_tiled and the achievable bandwidths of memory levels and links."""
from __future__ import annotations

import pytest

from memsim.engine import simulate_program
from memsim.errors import InputError, SpecError
from memsim.hardware import load_hardware, parse_hardware
from memsim.schedulers import get_schedule
from memsim.validation.copies import predict_copy
from memsim.validation.mapping import map_case
from memsim.validation.data import load_gpu_cases
from memsim.workloads import GemmWorkload

HW = load_hardware("h100-sxm")


def _gemm(w, **opts):
    sched = get_schedule("gemm_tiled").from_dict(opts, w, HW)
    return sched, simulate_program(HW, sched.kernels(), granularity="block")


def test_cluster_1x1_is_the_default_program():
    w = GemmWorkload(1000, 3000, 500, "bf16")
    s0, base = _gemm(w, tile_m=128, tile_n=256)
    s1, same = _gemm(w, tile_m=128, tile_n=256, cluster_m=1, cluster_n=1)
    assert s0.resolved() == s1.resolved() and "cluster_m" not in s0.resolved()
    assert same.levels == base.levels and same.time_s == base.time_s


@pytest.mark.parametrize("m,n,k,tm,tn,cm,cn", [
    (1000, 3000, 500, 128, 256, 1, 2), (1000, 3000, 500, 128, 256, 2, 1),
    (1000, 3000, 500, 128, 256, 2, 2), (64, 8192, 1024, 64, 64, 1, 2),
    (777, 555, 300, 128, 128, 3, 2)])
def test_cluster_multicast_counts_shared_loads_once(m, n, k, tm, tn, cm, cn):
    """A tile of A is read from L2 once per cluster row segment, B once per column segment;
    C and the FLOPs are unchanged."""
    w = GemmWorkload(m, n, k, "bf16")
    s, er = _gemm(w, tile_m=tm, tile_n=tn, cluster_m=cm, cluster_n=cn)
    Tm, Tn = -(-m // tm), -(-n // tn)
    # clusters of cn columns: a tile row's A is read by ceil(Tn / cn) leaders
    a_reads = m * k * 2 * -(-Tn // cn)
    b_reads = n * k * 2 * -(-Tm // cm)
    assert er.tensors["A"]["l2_read"] == pytest.approx(a_reads, rel=1e-12)
    assert er.tensors["B"]["l2_read"] == pytest.approx(b_reads, rel=1e-12)
    assert er.tensors["C"]["l2_write"] == pytest.approx(m * n * 2, rel=1e-12)
    _, base = _gemm(w, tile_m=tm, tile_n=tn)
    assert er.flops == base.flops
    assert s.resolved()["cluster_m"] == cm and s.resolved()["cluster_n"] == cn


def test_cluster_option_is_checked():
    w = GemmWorkload(256, 256, 256, "bf16")
    with pytest.raises(InputError, match="cluster_n"):
        get_schedule("gemm_tiled").from_dict({"cluster_n": 0}, w, HW)


def test_nvjet_cluster_field_maps_to_cluster_options():
    ds = load_gpu_cases("h100")
    # nvjet_sm90_tst_64x64_64x13_2x1_v: cuBLAS 2x1 cluster = memsim cluster_n 2
    model = map_case(ds.case("gemm_m64n8192k8192"))
    assert (model.config["schedule"]["cluster_m"], model.config["schedule"]["cluster_n"]) == (1, 2)
    # nvjet_sm90_tst_256x128_64x4_1x2_h: cluster_m 2
    model = map_case(ds.case("gemm_m2048n2048k2048"))
    assert (model.config["schedule"]["cluster_m"], model.config["schedule"]["cluster_n"]) == (2, 1)


def test_h100_keeps_datasheet_peaks_and_simulates_the_achievable_bandwidth():
    hbm, pcie = HW.memory("hbm"), HW.link("pcie")
    assert hbm.peak_read_bandwidth == hbm.peak_write_bandwidth == 3.35e12
    assert hbm.read_bandwidth == hbm.write_bandwidth == 2.98e12
    assert pcie.peak_bandwidth("host", "hbm") == pcie.peak_bandwidth("hbm", "host") == 64e9
    assert pcie.bandwidth("host", "hbm") == pcie.bandwidth("hbm", "host") == 55.1e9
    assert "calibration split" in hbm.achievable_source
    assert "calibration split" in pcie.achievable_source
    # the copy model and the engine use the achievable figure
    t = predict_copy(HW, "d2d", 2**30).time_s
    assert t == pytest.approx(HW.gpu.launch_overhead_s + 2 * 2**30 / 2.98e12, rel=1e-12)
    peak = HW.with_overrides({"memories.hbm.achievable_bandwidth": None,
                              "memories.hbm.achievable_source": None})
    w = GemmWorkload(1, 16384, 8192, "bf16")          # HBM-bound
    _, fast = _gemm(w)
    sched = get_schedule("gemm_tiled").from_dict({}, w, peak)
    slow = simulate_program(peak, sched.kernels(), granularity="block")
    # same bytes, less time at the datasheet peak
    assert slow.levels["hbm"].read_bytes == fast.levels["hbm"].read_bytes
    assert slow.time_s < fast.time_s


def test_achievable_bandwidth_yaml_forms_round_trip():
    text = """
version: 1
name: t
kind: gpu
gpu: {sms: 4, max_blocks_per_sm: 2, launch_overhead: 1 us, source: s}
memories:
  - {name: sram, kind: scratchpad, capacity: 64 KiB, instances: 4, per: sm, parent: hbm,
     bandwidth: {read: 100 GB/s, write: 80 GB/s, scope: per_instance},
     achievable_bandwidth: {read: 90 GB/s, write: 70 GB/s, scope: per_instance},
     achievable_source: bench, source: s}
  - {name: hbm, kind: dram, capacity: 1 GB, bandwidth: 1 TB/s, achievable_bandwidth: 0.9 TB/s,
     achievable_source: bench, source: s}
  - {name: host, kind: dram, capacity: 1 GB, bandwidth: 100 GB/s, source: s}
links:
  - {name: pcie, kind: pcie, between: [host, hbm], bandwidth: {forward: 64 GB/s, backward: 32 GB/s},
     achievable_bandwidth: {forward: 50 GB/s, backward: 30 GB/s}, achievable_source: bench,
     source: s}
compute:
  - {name: tc, rates: {bf16: {peak: 1 TFLOP/s, source: s}}}
"""
    hw = parse_hardware(text, "t.yaml")
    sram = hw.memory("sram")
    assert (sram.read_bandwidth, sram.write_bandwidth) == (360e9, 280e9)
    assert (sram.peak_read_bandwidth, sram.peak_write_bandwidth) == (400e9, 320e9)
    assert hw.memory("hbm").read_bandwidth == 0.9e12
    assert hw.memory("host").read_bandwidth == 100e9
    assert hw.link("pcie").bandwidth("hbm", "host") == 30e9
    assert hw.link("pcie").peak_bandwidth("hbm", "host") == 32e9
    assert parse_hardware(hw.to_yaml()) == hw
    # a new SM count keeps the per-SM achievable figure
    v = hw.with_overrides({"gpu.sms": 2})
    assert v.memory("sram").read_bandwidth == pytest.approx(180e9, rel=1e-12)
    unsourced = text.replace("achievable_bandwidth: 0.9 TB/s,\n     achievable_source: bench,",
                             "achievable_bandwidth: 0.9 TB/s,")
    with pytest.raises(SpecError, match="achievable_source"):
        parse_hardware(unsourced, "t.yaml")
    with pytest.raises(SpecError, match="expected at most the peak bandwidth"):
        parse_hardware(text.replace("achievable_bandwidth: 0.9 TB/s", "achievable_bandwidth: 1.1 TB/s"), "t.yaml")
