"""Run-configuration loading: located errors, --set overrides, the registry of kinds."""
import pytest
from click.testing import CliRunner

from memsim.cli import cli
from memsim.config import load_run_config, parse_override
from memsim.errors import InputError, SpecError

CONFIG = """\
version: 1
hardware: h100-sxm
workload:
  kind: attention
  batch: 2
  heads: 4
  seq_q: 256
  seq_k: 256
  head_dim: 64
schedule:
  kind: flash2
  block_q: 64
  block_k: 64
"""


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(CONFIG)
    return path


def write(tmp_path, text, name="bad.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_loads_contract_example(config_file):
    cfg = load_run_config(config_file)
    assert cfg.hardware.name == "h100-sxm" and cfg.hardware_name == "h100-sxm"
    assert cfg.workload_kind == "attention" and cfg.workload.batch == 2
    assert cfg.workload.kv_heads == 4 and cfg.granularity == "tile" and cfg.trace is False
    resolved = cfg.schedule.resolved()
    assert resolved["kind"] == "flash2" and resolved["block_q"] == 64


@pytest.mark.parametrize("old, new, path, line, words", [
    ("  batch: 2\n", "  batch: two\n", "workload.batch", 5, "expected an integer"),
    ("  heads: 4\n", "  heads: 4\n  kv_heads: 3\n", "workload.kv_heads", 7,
     "expected a divisor of heads (4)"),
    ("  kind: attention\n", "  kind: attnetion\n", "workload.kind", 4,
     "unknown workload kind 'attnetion'"),
    ("version: 1\n", "version: 1\nhardwear: x\n", "hardwear", 2, "unknown key 'hardwear'"),
    ("version: 1\n", "version: 7\n", "version", 1, "expected one of 1"),
    ("  head_dim: 64\n", "  head_dim: 64\n  dtype: fp64\n", "workload.dtype", 10,
     "expected one of: fp32, bf16"),
])
def test_errors_are_located(tmp_path, old, new, path, line, words):
    bad = write(tmp_path, CONFIG.replace(old, new))
    with pytest.raises(SpecError) as info:
        load_run_config(bad)
    err = info.value
    assert (err.file, err.line, err.path) == (str(bad), line, path)
    assert words in str(err)


def test_unknown_hardware_preset_lists_presets(tmp_path):
    bad = write(tmp_path, CONFIG.replace("h100-sxm", "h900"))
    with pytest.raises(SpecError, match="unknown hardware preset 'h900', expected one of: .*h100-sxm"):
        load_run_config(bad)


def test_missing_schedule_section(tmp_path):
    bad = write(tmp_path, CONFIG.split("schedule:")[0])
    with pytest.raises(SpecError, match="missing required section 'schedule'"):
        load_run_config(bad)


def test_parse_override_scalars():
    assert parse_override("workload.batch=8") == ("workload.batch", 8)
    assert parse_override("workload.causal=true") == ("workload.causal", True)
    assert parse_override("workload.window=null") == ("workload.window", None)
    assert parse_override("a.b=1e3") == ("a.b", 1000)
    assert parse_override("a.b=2.5e-1") == ("a.b", 0.25)
    assert parse_override("hardware=a100-80gb") == ("hardware", "a100-80gb")
    assert parse_override("x=128 KiB") == ("x", "128 KiB")
    with pytest.raises(InputError, match="expected PATH=VALUE"):
        parse_override("workload.batch")


def test_overrides_change_fields(config_file):
    cfg = load_run_config(config_file, [("workload.batch", "8"), ("workload.causal", "true"),
                                        ("schedule.block_q", 128),
                                        ("simulation.granularity", "block")])
    assert cfg.workload.batch == 8 and cfg.workload.causal is True
    assert cfg.schedule.resolved()["block_q"] == 128 and cfg.granularity == "block"
    # a RunConfig can be re-derived with more overrides; the original is unchanged
    again = cfg.with_overrides([("workload.heads", 8)])
    assert again.workload.heads == 8 and cfg.workload.heads == 4


def test_override_of_unknown_path_names_the_set(config_file):
    with pytest.raises(SpecError) as info:
        load_run_config(config_file, [("workload.bacth", "8")])
    msg = str(info.value)
    assert "workload.bacth" in msg and "unknown key 'bacth'" in msg
    assert "(from --set workload.bacth=8)" in msg and "did you mean 'batch'" in msg
    with pytest.raises(SpecError, match=r"workload.batch: found str 'x', expected an integer "
                                        r"\(from --set workload.batch=x\)"):
        load_run_config(config_file, [("workload.batch", "x")])
    with pytest.raises(InputError, match="workload.batch is int 2, not a mapping"):
        load_run_config(config_file, [("workload.batch.x", "1")])
    with pytest.raises(SpecError, match="unknown key 'simulaton'"):
        load_run_config(config_file, [("simulaton.trace", "true")])


def test_hardware_override(config_file):
    cfg = load_run_config(config_file, [("hardware.memories.sram.capacity", "100 KiB"),
                                        ("hardware.memories.sram.max_per_block", "100 KiB")])
    assert cfg.hardware.memory("sram").capacity_bytes == 100 * 1024


def test_bad_hardware_override_is_located(config_file):
    with pytest.raises(SpecError) as info:
        load_run_config(config_file, [("hardware.memories.sram.capacty", "1 MiB")])
    err = info.value
    assert err.path == "hardware_overrides.memories.sram.capacty" and err.file == str(config_file)
    assert "did you mean 'capacity'" in str(err)
    assert "(from --set hardware.memories.sram.capacty=1 MiB)" in str(err)


def test_dict_source_is_not_mutated():
    import yaml
    data = yaml.safe_load(CONFIG)
    cfg = load_run_config(data, [("workload.batch", 3)])
    assert cfg.workload.batch == 3 and data["workload"]["batch"] == 2


def test_cli_bad_config_exits_2_with_one_line(tmp_path):
    bad = write(tmp_path, CONFIG.replace("  heads: 4\n", "  heads: 4\n  kv_heads: 3\n"))
    result = CliRunner().invoke(cli, ["run", str(bad)])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("memsim: error: ")
    assert f"{bad}:7: workload.kv_heads" in lines[0]
    assert "Traceback" not in result.output


def test_cli_bad_set_exits_2(config_file):
    result = CliRunner().invoke(cli, ["run", str(config_file), "--set", "workload.heads=0"])
    assert result.exit_code == 2 and "workload.heads: found 0" in result.output
    result = CliRunner().invoke(cli, ["run", str(config_file), "--set", "novalue"])
    assert result.exit_code == 2 and "expected PATH=VALUE" in result.output


def test_cli_missing_file_exits_2(tmp_path):
    result = CliRunner().invoke(cli, ["run", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2 and "file not found" in result.output
