"""The examples in README.md and docs/hardware.md run as written."""
from __future__ import annotations

import re
from pathlib import Path

from memsim.hardware import parse_hardware, preset_names

ROOT = Path(__file__).resolve().parents[2]


def _blocks(path: Path, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", path.read_text(), flags=re.S)


def test_readme_starts_with_the_two_commands(monkeypatch, capsys):
    lines = (ROOT / "README.md").read_text().splitlines()
    install, _, main_job = lines[3].partition(" && ")
    assert install == "pip install -e ."
    assert main_job.startswith("memsim run examples/")
    assert lines[4] == "pip install -e '.[test]' && python -m pytest -q tests"
    # the main job runs as written, from the repository root
    from memsim.cli import main
    monkeypatch.chdir(ROOT)
    assert main(main_job.split()[1:]) == 0
    assert "time" in capsys.readouterr().out


def test_readme_python_example_runs():
    (block,) = _blocks(ROOT / "README.md", "python")
    exec(compile(block, "README.md", "exec"), {})


def test_hardware_reference_examples_load():
    blocks = _blocks(ROOT / "docs" / "hardware.md", "yaml")
    complete = [b for b in blocks if b.startswith("version: 1\nname: tiny")]
    assert len(complete) == 1
    hw = parse_hardware(complete[0], "docs/hardware.md")
    assert hw.memory("sram").read_bandwidth == 4 * 128e9       # per_instance x 4 SMs
    assert hw.find_rate("bf16_mma")[1].effective == 40e12


def test_hardware_reference_python_example_runs():
    (block,) = _blocks(ROOT / "docs" / "hardware.md", "python")
    exec(compile(block, "docs/hardware.md", "exec"), {})


def test_hardware_reference_lists_every_preset():
    text = (ROOT / "docs" / "hardware.md").read_text()
    for name in preset_names():
        assert f"| `{name}` |" in text
