"""The foundation commands through ``memsim.cli.main`` (the console-script entry point), with
exit codes: ``--version``, ``hardware list|show``, ``validate``."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from memsim import __version__, load_hardware
from memsim.cli import main
from memsim.hardware import parse_hardware, preset_names
from memsim.hardware.summary import summary_line

GOOD = """\
version: 1
name: tiny
kind: accelerator
memories:
  - {name: sram, kind: scratchpad, capacity: 1 MiB, parent: dram, bandwidth: 1 TB/s, source: s}
  - {name: dram, kind: dram, capacity: 8 GiB, bandwidth: 100 GB/s, source: s}
"""


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_version(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0
    assert out.strip() == f"memsim, version {__version__}"


def test_list_names_every_preset_with_kind_and_summary(capsys):
    code, out, err = run(capsys, "hardware", "list")
    assert code == 0 and err == ""
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == preset_names()
    for line in lines:
        name, kind = line.split()[:2]
        assert kind == load_hardware(name).kind
    h100 = next(line for line in lines if line.startswith("h100-sxm "))
    assert h100.endswith(summary_line(load_hardware("h100-sxm")))


def test_summary_line_of_a_fixed_document():
    hw = parse_hardware(GOOD.replace("kind: accelerator", "kind: gpu\ngpu: {sms: 4, "
                                     "max_blocks_per_sm: 8, launch_overhead: 1 us, source: s}")
                        + "compute:\n  - {name: t, rates: {a: {peak: 989.4 TFLOP/s, dtype: "
                          "bf16, source: s}, b: {peak: 2 PFLOP/s, dtype: fp8, source: s}}}\n")
    assert summary_line(hw) == "4 SMs, 8 GiB DRAM @ 100 GB/s, 989 TFLOP/s bf16"


def test_show_json_is_in_base_units(capsys):
    code, out, _ = run(capsys, "hardware", "show", "h100-sxm", "--format", "json")
    assert code == 0
    data = json.loads(out)
    levels = {m["name"]: m for m in data["memories"]}
    hw = load_hardware("h100-sxm")
    assert levels["hbm"]["capacity"] == 80 * 10**9
    assert levels["l2"]["capacity"] == 50 * 2**20
    assert levels["sram"]["capacity"] == 228 * 2**10
    assert levels["sram"]["bandwidth"] == 33.5e12
    # the datasheet peak, and the measured figure the simulator uses next to it
    assert levels["hbm"]["bandwidth"] == hw.memory("hbm").peak_read_bandwidth == 3.35e12
    assert levels["hbm"]["achievable_bandwidth"] == hw.memory("hbm").read_bandwidth
    assert isinstance(levels["hbm"]["bandwidth"], float) and levels["hbm"]["bandwidth"] > 1e12
    assert levels["ssd"]["bandwidth"] == {"read": 56e9, "write": 32e9}
    assert data["gpu"]["clock"] == 1.98e9


def test_show_yaml_reads_back(capsys):
    code, out, _ = run(capsys, "hardware", "show", "t4")
    assert code == 0
    assert parse_hardware(out) == load_hardware("t4")


@pytest.mark.parametrize("name", preset_names())
def test_show_table(capsys, name):
    code, out, _ = run(capsys, "hardware", "show", name, "--format", "table")
    assert code == 0
    hw = load_hardware(name)
    assert out.startswith(f"{name} ({hw.kind})")
    for level in hw.memories:
        assert any(line.split()[:1] == [level.name] for line in out.splitlines())


def test_show_a_file(capsys, tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(GOOD)
    code, out, _ = run(capsys, "hardware", "show", str(path), "--format", "json")
    assert code == 0
    assert json.loads(out)["memories"][1]["capacity"] == 8 * 2**30


def test_show_unknown_preset_exits_2(capsys):
    code, out, err = run(capsys, "hardware", "show", "h100")
    assert code == 2 and out == ""
    assert err == ("memsim: error: unknown hardware preset 'h100', expected one of: "
                   f"{', '.join(preset_names())} (or a path to a YAML file)\n")


def test_show_bad_format_is_a_usage_error(capsys):
    code, _, err = run(capsys, "hardware", "show", "t4", "--format", "xml")
    assert code == 2
    assert "Invalid value for '--format'" in err


def test_validate_good_files(capsys, tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(GOOD)
    code, out, err = run(capsys, "validate", str(path), "memsim/hardware/presets/h200.yaml")
    assert code == 0 and err == ""
    assert out.splitlines() == [f"{path}: ok (hardware 'tiny')",
                                "memsim/hardware/presets/h200.yaml: ok (hardware 'h200')"]


def test_validate_reports_every_bad_file_and_continues(capsys, tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    bad1 = tmp_path / "bad1.yaml"
    bad1.write_text(GOOD.replace("bandwidth: 100 GB/s", "bandwidth: 80 GiB"))
    bad2 = tmp_path / "bad2.yaml"
    bad2.write_text("")
    missing = tmp_path / "missing.yaml"
    code, out, err = run(capsys, "validate", str(bad1), str(good), str(bad2), str(missing))
    assert code == 2
    assert out == f"{good}: ok (hardware 'tiny')\n"
    assert err.splitlines() == [
        f"memsim: error: {bad1}:6: memories[1].bandwidth: found '80 GiB' ('GiB' is a unit of "
        "bytes), expected a bandwidth quantity such as '3.35 TB/s' or '64 GiB/s'",
        f"memsim: error: {bad2}:1: found an empty document, expected a mapping (a hardware "
        "description)",
        f"memsim: error: {missing}: file not found, expected a readable YAML file",
    ]


def test_validate_needs_a_file(capsys):
    code, _, err = run(capsys, "validate")
    assert code == 2
    assert "Missing argument" in err


def test_validate_dispatches_run_configs(capsys, tmp_path, monkeypatch):
    """Documents with a top-level ``workload`` are run configurations (memsim.config)."""
    import memsim.config
    seen = []
    monkeypatch.setattr(memsim.config, "validate_run_config", lambda path: seen.append(path))
    path = tmp_path / "run.yaml"
    path.write_text("hardware: h100-sxm\nworkload: {kind: gemm}\n")
    code, out, _ = run(capsys, "validate", str(path))
    assert code == 0
    assert seen == [str(path)]
    assert out == f"{path}: ok (run configuration)\n"


def test_console_script_exit_code(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\n")
    proc = subprocess.run([sys.executable, "-c", "import sys; from memsim.cli import main; "
                           "sys.exit(main())", "validate", str(bad)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr == (f"memsim: error: {bad}:1: missing required field 'name' "
                           "(a string)\n")
    assert "Traceback" not in proc.stderr
