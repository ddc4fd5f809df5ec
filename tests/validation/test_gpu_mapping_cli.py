"""Mapping of measured kernels to schedules (from kernel-name evidence) and the
``memsim validate-gpu`` command."""
from __future__ import annotations

import pytest

import memsim
from memsim.cli import main
from memsim.validation.copies import predict_copy
from memsim.validation.data import load_gpu_cases
from memsim.validation.mapping import map_case


@pytest.fixture(scope="module")
def ds():
    return load_gpu_cases("h100")


@pytest.mark.parametrize("case_id,expect", [
    ("attn_flash_b4h16n512d64", {"kind": "flash2", "block_q": 128, "block_k": 128,
                                 "instruction": "bf16_mma"}),
    ("attn_flash_b4h16n512d128", {"kind": "flash2", "block_q": 128, "block_k": 64}),
    ("attn_efficient_b4h16n512d128", {"kind": "flash2", "block_q": 64, "block_k": 128}),
    ("attn_cudnn_b4h16n512d64", {"block_q": 128, "block_k": 128, "stages": 4,
                                 "instruction": "bf16_wgmma"}),
    ("attn_cudnn_b4h16n512d128", {"stages": 3}),
    ("decode_flash_b1h32k1024d128", {"kind": "flash_decoding", "splits": 8, "block_k": 128}),
    ("decode_flash_b1h32k4096d128", {"kind": "flash_decoding", "splits": 7}),
    ("decode_cudnn_b1h32k1024d128", {"kind": "flash_decoding", "splits": 8}),
    ("decode_cudnn_b8h32k1024d128", {"kind": "flash2", "block_q": 16, "block_k": 128}),
    # nvjet 256x128_64x4, column-major: cuBLAS M (256) is torch's n
    ("gemm_m4096n4096k4096", {"kind": "gemm_tiled", "tile_m": 128, "tile_n": 256, "tile_k": 64,
                              "stages": 4}),
    ("gemm_m1n4096k4096", {"tile_m": 8, "tile_n": 64, "stages": 16}),
])
def test_mapping_from_kernel_evidence(ds, case_id, expect):
    model = map_case(ds.case(case_id))
    sched = model.config["schedule"]
    assert {k: sched[k] for k in expect} == expect


def test_math_backend_maps_to_its_kernel_sequence(ds):
    model = map_case(ds.case("attn_math_b4h16n512d64"))
    assert model.kind == "math" and model.config is None and model.case.id == model.case_id


def test_mapped_configs_run_and_resolve_as_given(ds):
    # the mapping is an ordinary run configuration: the schedule resolves to the same values
    model = map_case(ds.case("attn_cudnn_b4h16n512d128"))
    r = memsim.simulate(model.config)
    for key, value in model.config["schedule"].items():
        assert r.schedule[key] == value
    # one CTA per SM, like cuDNN's persistent grid of 132 CTAs
    assert r.kernels[0]["blocks_per_sm"] == 1


def test_launch_and_latency_records_are_not_predicted(ds):
    assert map_case(ds.case("launch_cupy_empty_back_to_back")) is None


def test_copy_model_relations():
    from memsim.hardware import load_hardware
    hw = load_hardware("h100-sxm")
    small, big = predict_copy(hw, "d2d", 1 << 20), predict_copy(hw, "d2d", 1 << 30)
    assert small.time_s > hw.gpu.launch_overhead_s
    # marginal cost per byte is read + write at the HBM bandwidth
    slope = (big.time_s - small.time_s) / ((1 << 30) - (1 << 20))
    assert slope == pytest.approx(2 / hw.memory("hbm").read_bandwidth)
    assert small.hbm_write_visible == 0 and big.hbm_write_visible < big.hbm_write_bytes
    h2d = predict_copy(hw, "h2d", 4096)
    link = hw.link_between("host", "hbm")
    assert h2d.time_s == pytest.approx(link.overhead_s + link.latency_s
                                       + 4096 / link.bandwidth("host", "hbm"))


def test_cli_prints_cases_and_summary_and_plot(tmp_path, capsys):
    plot = tmp_path / "pvm.png"
    code = main(["validate-gpu", "h100", "--family", "copy_pcie", "--family", "decode_cudnn",
                 "--split", "held-out", "--plot", str(plot)])
    out = capsys.readouterr().out
    assert code == 0
    assert "decode_cudnn_b8h32k4096d128" in out or "decode_cudnn" in out
    assert "Error summary, held-out cases" in out and "copy_pcie" in out
    # copy_pcie has time targets only (no Nsight counters); decode_cudnn all four
    assert "targets met (per family, held out): 6 of 6" in out
    assert plot.is_file() and plot.stat().st_size > 1000


def test_cli_json_and_bad_data(tmp_path, capsys):
    import json
    assert main(["validate-gpu", "--family", "copy_pcie", "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert {c["family"] for c in doc["cases"]} == {"copy_pcie"}
    assert main(["validate-gpu", "no_such_device"]) == 2
    assert "no_such_device" in capsys.readouterr().err
    assert main(["validate-gpu", "--family", "nothing"]) == 2
    err = capsys.readouterr().err
    assert "unknown 'nothing'" in err and "prefill_flash" in err and "Traceback" not in err


def test_cli_reports_l2_requests_and_lookups(capsys):
    assert main(["validate-gpu", "--family", "prefill_cudnn", "--split", "held-out"]) == 0
    out = capsys.readouterr().out
    assert "lookups" in out and "L2lk max" in out and "Request Coalescer" in out


def test_cli_second_device_speedup_and_hardware(tmp_path, capsys):
    import json
    # h200 data predicts on the h200 preset; --speedup-vs compares with the H100's cases
    assert main(["validate-gpu", "h200", "--family", "copy_d2d", "--speedup-vs", "h100",
                 "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    sp = {s["family"]: s for s in doc["speedup_vs"]["summary"]}
    assert doc["speedup_vs"]["device"] == "h100" and set(sp) == {"copy_d2d", "all"}
    # device copies are HBM-bound: 4.16 vs 2.98 TB/s achievable (ratio 1.40) less launch cost
    assert 1.2 < sp["copy_d2d"]["measured_median"] < 1.45
    assert sp["copy_d2d"]["err_median"] < 0.05
    assert main(["validate-gpu", "h200", "--family", "copy_pcie", "--hardware", "h100-sxm"]) == 0
    assert "copy_pcie" in capsys.readouterr().out
    assert main(["validate-gpu", "h200", "--hardware", "no-such-preset"]) == 2
    assert "no-such-preset" in capsys.readouterr().err


def test_cli_data_of_an_unknown_device_needs_a_preset(tmp_path, capsys):
    from memsim.validation.data import DATA_DIR
    doc = (DATA_DIR / "h200" / "gpu_cases.json").read_text()
    (tmp_path / "gpu_cases.json").write_text(doc.replace('"device": "h200"', '"device": "mygpu"'))
    assert main(["validate-gpu", str(tmp_path), "--family", "copy_d2d"]) == 2
    err = capsys.readouterr().err
    assert "'mygpu'" in err and "--hardware" in err and "Traceback" not in err
    # with a preset: predicted, every case counted as held out (nothing of it calibrated)
    assert main(["validate-gpu", str(tmp_path), "--family", "copy_d2d", "--hardware",
                 "h200"]) == 0
    out = capsys.readouterr().out
    rows = [ln for ln in out.splitlines() if ln.startswith(("d2d_", "d2dk_"))]
    assert "Error summary, held-out cases" in out and len(rows) == 22
    assert all(ln.split()[2] == "H" for ln in rows)


def test_cli_progress_goes_to_stderr_only(capsys):
    assert main(["validate-gpu", "--family", "copy_pcie", "--format", "json", "--progress"]) == 0
    out, err = capsys.readouterr()
    import json
    assert json.loads(out)["cases"] and "predicting 20 cases" in err
