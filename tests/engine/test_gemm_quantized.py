"""Weight-quantized GEMMs (B in int4/int8 with group scales, A and C in the activation dtype)
through gemm_tiled: simulated L2/SRAM bytes equal memsim.bounds.gemm_traffic (written from
docs/schedules.md) to the byte, SRAM per block uses the stored B tile, FLOPs are unchanged
and timed on the activation dtype's instruction class, defaults change nothing."""
import pytest

import memsim
from memsim.bounds import gemm_traffic, matmul_lower_bound
from memsim.engine import simulate_program
from memsim.errors import InputError, SpecError
from memsim.hardware import load_hardware
from memsim.schedulers import get_schedule
from memsim.schedulers.gemm import groups_per_step, library_tiles
from memsim.workloads import GemmWorkload

HW = load_hardware("h100-sxm")
SRAM = HW.memory("sram").max_per_block_bytes

# (workload, schedule options): non-divisible m/n/k, group not dividing tile_k (and the
# reverse), a group larger than k, no groups, int8 with fp32 scales, library tiling
CASES = [
    (GemmWorkload(1000, 3000, 500, "bf16", "int4", 128, "fp16", True), {}),
    (GemmWorkload(16, 4096, 4096, "fp16", "int4", 128), {"tiling": "library"}),
    (GemmWorkload(77, 333, 1000, "fp16", "int8", 96, "fp32", True), {"tile_k": 80}),
    (GemmWorkload(130, 250, 999, "bf16", "int4", 48, "bf16", True),
     {"tile_m": 64, "tile_n": 96, "tile_k": 64}),
    (GemmWorkload(5, 70, 300, "bf16", "int4", 1024), {"tile_k": 32}),
    (GemmWorkload(77, 333, 1000, "fp16", "int4"), {}),
    (GemmWorkload(1, 11008, 4096, "fp16", "int4", 128, "fp16", True), {"tiling": "library"}),
    (GemmWorkload(300, 200, 100, "fp32", "fp8", 32, "fp16"), {"stages": 3}),
]


def _closed_form(w, res):
    return gemm_traffic(w.m, w.n, w.k, w.dtype_bytes, res["tile_m"], res["tile_n"],
                        res["tile_k"], b_dtype_bytes=w.b_dtype_bytes,
                        group_size=w.b_group_size, group_bytes=w.b_group_bytes)


def _run(w, opts, granularity="block"):
    sched = get_schedule("gemm_tiled").from_dict(opts, w, HW)
    return sched, simulate_program(HW, sched.kernels(), granularity=granularity)


@pytest.mark.parametrize("granularity", ["block", "wave"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0].m}x{c[0].n}x{c[0].k}"
                         f"-{c[0].b_dtype}g{c[0].b_group_size}")
def test_quantized_gemm_bytes_equal_closed_form(case, granularity):
    w, opts = case
    sched, er = _run(w, opts, granularity)
    cf = _closed_form(w, sched.resolved())
    got = {t: (v["l2_read"], v["l2_write"]) for t, v in er.tensors.items()
           if v["l2_read"] or v["l2_write"]}
    assert got == cf.bytes_by_tensor()
    assert er.levels["l2"].read_bytes == cf.read_bytes
    assert er.levels["l2"].write_bytes == cf.write_bytes
    # no clusters: SRAM is filled with the L2 reads and C (written, then drained); compute
    # reads every fill once, plus the scales of groups a step dequantizes but an earlier
    # step loaded: n·Tm·(groups touched per step summed - ceil(k/g)) entries
    total = cf.read_bytes + cf.write_bytes
    assert er.levels["sram"].write_bytes == total
    extra = 0
    if w.b_group_size is not None:
        g, tk = w.b_group_size, sched.resolved()["tile_k"]
        touched = sum((min(c + tk, w.k) + g - 1) // g - c // g for c in range(0, w.k, tk))
        tiles_m = -(-w.m // sched.resolved()["tile_m"])
        extra = w.n * tiles_m * (touched - -(-w.k // g)) * w.b_group_bytes
    assert er.levels["sram"].read_bytes == total + extra
    assert er.flops_by_class == {sched.instruction: cf.flops} and cf.flops == w.flops


def test_groups_per_step_by_hand():
    # k = 300, tk = 64, g = 48: steps [0,64) [64,128) [128,192) [192,256) [256,300)
    # touch groups 0-1, 1-2, 2-3, 4-5, 5-6 and load 0-1, 2, 3, 4-5, 6 (7 groups in all)
    assert groups_per_step(300, 64, 48).tolist() == [2, 2, 2, 2, 2]
    assert groups_per_step(300, 64, 48, new=True).tolist() == [2, 1, 1, 2, 1]
    assert groups_per_step(300, 64, 128).tolist() == [1, 1, 1, 1, 1]
    assert groups_per_step(300, 64, 128, new=True).tolist() == [1, 0, 1, 0, 1]
    assert groups_per_step(256, 128, 64, new=True).tolist() == [2, 2]


def test_scale_bytes_by_hand():
    # m=100 (Tm=2 at tile_m 64), n=300, k=256, int4 + fp16 scale + int4 zero, g = 64
    w = GemmWorkload(100, 300, 256, "bf16", "int4", 64, "fp16", True)
    sched, er = _run(w, {"tile_m": 64, "tile_n": 128, "tile_k": 64})
    assert er.tensors["B"]["l2_read"] == 256 * 300 * 0.5 * 2 == 76_800
    assert er.tensors["B_scales"]["l2_read"] == 4 * 300 * 2.5 * 2 == 6_000
    # tile_k 32 < g: each group's metadata is still loaded once per output tile
    _, er32 = _run(w, {"tile_m": 64, "tile_n": 128, "tile_k": 32})
    assert er32.tensors["B_scales"]["l2_read"] == 6_000
    assert er32.levels["hbm"].read_bytes == er.levels["hbm"].read_bytes
    assert er.tensors["A"]["l2_read"] == 100 * 256 * 2 * 3
    assert w.tensor_bytes() == {"a": 51_200, "b": 38_400, "c": 60_000, "b_scales": 3_000}


def test_sram_per_block_holds_the_quantized_tile():
    w = GemmWorkload(1024, 1024, 1024, "fp16", "int4", 128, "fp16", True)
    sched = get_schedule("gemm_tiled").from_dict(
        {"tile_m": 128, "tile_n": 256, "tile_k": 64, "stages": 4}, w, HW)
    # per stage: A 128x64 fp16, B 64x256 int4, one group (fp16 scale + int4 zero) x 256
    assert sched.sram == 4 * (128 * 64 * 2 + 64 * 256 * 0.5 + 256 * 2.5) == 100_864
    bf16 = get_schedule("gemm_tiled").from_dict(
        {"tile_m": 128, "tile_n": 256, "tile_k": 64, "stages": 4},
        GemmWorkload(1024, 1024, 1024, "fp16"), HW)
    assert bf16.sram == 4 * (128 * 64 + 64 * 256) * 2 > sched.sram
    # the same tile at 8 stages fits only quantized (227 KiB per block)
    get_schedule("gemm_tiled").from_dict({"tile_m": 128, "tile_n": 256, "stages": 8}, w, HW)
    with pytest.raises(InputError, match="B scales"):
        get_schedule("gemm_tiled").from_dict({"tile_m": 256, "tile_n": 256, "stages": 16},
                                             w, HW)


def test_flops_timed_on_the_activation_instruction():
    w = GemmWorkload(512, 512, 512, "fp16", "int8", 64)
    sched = get_schedule("gemm_tiled").from_dict({}, w, HW)
    assert sched.instruction == "fp16_wgmma"


def test_defaults_change_nothing():
    plain = GemmWorkload(1000, 3000, 500, "bf16")
    same = GemmWorkload(1000, 3000, 500, "bf16", "bf16")     # b_dtype == dtype, no groups
    assert not same.quantized and plain.to_dict() == {"kind": "gemm", "m": 1000, "n": 3000,
                                                      "k": 500, "dtype": "bf16"}
    for opts in ({}, {"tiling": "library"}):
        a, ea = _run(plain, opts)
        b, eb = _run(same, opts)
        assert a.resolved() == b.resolved() and a.sram == b.sram
        assert ea.levels == eb.levels and ea.tensors == eb.tensors and ea.time_s == eb.time_s


def test_int4_weights_quarter_the_b_bytes():
    for opts in ({}, {"tile_m": 64, "tile_n": 64, "tile_k": 32}):
        _, q = _run(GemmWorkload(300, 700, 900, "bf16", "int4"), opts)
        _, p = _run(GemmWorkload(300, 700, 900, "bf16"), opts)
        assert q.tensors["B"]["l2_read"] * 4 == p.tensors["B"]["l2_read"]
        assert q.tensors["A"] == p.tensors["A"] and q.tensors["C"] == p.tensors["C"]


def test_library_tiles_use_the_operand_sizes():
    sms = HW.gpu.sms
    for m, n, k in ((1, 4096, 4096), (16, 14336, 4096), (512, 4096, 4096), (8192, 8192, 8192)):
        plain = library_tiles(m, n, k, 2, sms, SRAM)
        assert library_tiles(m, n, k, 2, sms, SRAM, b_elem_bytes=2) == plain
        quant = library_tiles(m, n, k, 2, sms, SRAM, b_elem_bytes=0.5, b_group_size=128,
                              b_group_bytes=2.5)
        tm, tn, tk = plain["tile_m"], plain["tile_n"], plain["tile_k"]
        assert {x: quant[x] for x in ("tile_m", "tile_n", "tile_k")} == \
            {"tile_m": tm, "tile_n": tn, "tile_k": tk}
        per_stage = tm * tk * 2 + tk * tn * 0.5 + tn * 2.5
        assert quant["stages"] == min(16, int(SRAM // per_stage)) >= plain["stages"]


def test_lower_bound_stays_below_the_simulated_bytes():
    for w, opts in CASES:
        sched, er = _run(w, opts)
        lb = matmul_lower_bound(w.m, w.n, w.k, w.dtype_bytes, SRAM,
                                b_dtype_bytes=w.b_dtype_bytes, group_size=w.b_group_size,
                                group_bytes=w.b_group_bytes)
        moved = er.levels["l2"].read_bytes + er.levels["l2"].write_bytes
        assert 0 < lb.io_bytes <= moved
        meta = sum(w.tensor_bytes().values())
        assert lb.terms["compulsory"] == meta


def test_run_config_keys_and_errors():
    base = {"hardware": "h100-sxm", "schedule": {"kind": "gemm_tiled"}}
    wl = {"kind": "gemm", "m": 64, "n": 256, "k": 512, "dtype": "fp16", "b_dtype": "int4",
          "b_group_size": 128, "b_zero_point": True}
    r = memsim.simulate({**base, "workload": wl})
    assert r.workload["b_scale_dtype"] == "fp16" and r.workload["b_dtype"] == "int4"
    assert r.lower_bound.ratio >= 1
    bad = [({"b_dtype": "int3"}, r"b_dtype.*int3"),
           ({"b_group_size": 0}, "b_group_size"),
           ({"b_group_size": None, "b_scale_dtype": "fp16", "b_zero_point": False},
            'b_scale_dtype" needs "b_group_size'),
           ({"b_group_size": None}, 'b_zero_point" needs "b_group_size'),
           ({"b_scale_dtype": "fp13"}, "b_scale_dtype.*fp13"),
           ({"b_zero_point": "yes"}, "b_zero_point")]
    for change, message in bad:
        data = {k: v for k, v in {**wl, **change}.items() if v is not None}
        with pytest.raises((InputError, SpecError), match=message):
            memsim.simulate({**base, "workload": data})


def test_closed_form_weight_format_by_hand_and_errors():
    # m=100, n=300, k=1000, tiles 64x128: Tm=2, Tn=3; int4 B, g=128 -> 8 groups, s=2.5 B
    t = gemm_traffic(100, 300, 1000, 2, 64, 128, 48, b_dtype_bytes=0.5, group_size=128,
                     group_bytes=2.5)
    assert t.bytes_by_tensor() == {"A": (100 * 1000 * 3 * 2, 0), "B": (1000 * 300 * 2 * 0.5, 0),
                                   "B_scales": (300 * 2 * 8 * 2.5, 0), "C": (0, 100 * 300 * 2)}
    assert gemm_traffic(100, 300, 1000, 2, 64, 128, 48) == \
        gemm_traffic(100, 300, 1000, 2, 64, 128, 48, b_dtype_bytes=2)
    with pytest.raises(InputError, match="b_dtype_bytes"):
        gemm_traffic(1, 1, 1, 2, 1, 1, 1, b_dtype_bytes=0.3)
    with pytest.raises(InputError, match="group_bytes"):
        gemm_traffic(1, 1, 1, 2, 1, 1, 1, group_size=4)
    with pytest.raises(InputError, match="group_size"):
        gemm_traffic(1, 1, 1, 2, 1, 1, 1, group_size=0, group_bytes=2)
