"""Report bundles: files, self-contained HTML, Markdown, provenance, the CLI, Chromium."""
from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from memsim.cli import cli
from memsim.reports import write_report

ROOT = Path(__file__).resolve().parents[2]
FIGURES = ["bytes_per_level", "roofline", "timeline", "traffic_vs_sram",
           "predicted_vs_measured"]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory, traced_result, small_config):
    out = tmp_path_factory.mktemp("report")
    measured = [(1.0e-5, 1.2e-5, "attention"), (3.0e-5, 2.9e-5, "gemm")]
    return write_report(traced_result, out, config=small_config, measured=measured,
                        measured_source="test points")


def test_bundle_writes_every_figure_in_both_formats(bundle):
    assert [f.name for f in bundle.figures] == FIGURES
    assert bundle.skipped == {}
    for f in bundle.figures:
        assert set(f.files) == {"png", "svg"}
        assert all(Path(p).stat().st_size > 10_000 for p in f.files.values())


def test_html_is_self_contained(bundle):
    text = bundle.html.read_text()
    images = re.findall(r"<img [^>]*src='([^']*)'", text)
    assert len(images) == len(FIGURES)
    assert all(src.startswith("data:image/png;base64,") for src in images)
    assert not re.search(r"(src|href)=['\"](?!data:)", text)     # nothing fetched from outside
    for heading in ("Summary", "Traffic per memory level", "Validation", "Figures",
                    "Configuration", "Provenance"):
        assert f"<h2>{heading}</h2>" in text


def test_markdown_links_the_pngs(bundle):
    text = bundle.markdown.read_text()
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert links == [f"{name}.png" for name in FIGURES]
    assert all((bundle.directory / link).is_file() for link in links)
    assert "## Provenance" in text and "```yaml" in text


def test_provenance_names_the_hardware_sources_and_calibration(bundle, small_config,
                                                               traced_result):
    text = bundle.markdown.read_text()
    hw = small_config.hardware
    assert hw.sources and all(src.replace("|", "\\|") in text for src in hw.sources)
    for name in traced_result.flops_by_class:
        assert f"rate {name}" in text
    assert "memsim version" in text and "test points" in text


def test_report_command_from_yaml_and_json(tmp_path):
    runner = CliRunner()
    cfg = ROOT / "examples" / "attention-flash2-h100.yaml"
    small = ["--set", "workload.batch=1", "--set", "workload.heads=2", "--set",
             "workload.kv_heads=2", "--set", "workload.seq_q=256", "--set",
             "workload.seq_k=256"]
    res = runner.invoke(cli, ["report", str(cfg), "--out", str(tmp_path / "a"), *small])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "a" / "timeline.svg").is_file()
    assert "# overrides (--set)" in (tmp_path / "a" / "report.md").read_text()
    res = runner.invoke(cli, ["run", str(cfg), "--format", "json", *small])
    assert res.exit_code == 0
    (tmp_path / "r.json").write_text(res.output)
    res = runner.invoke(cli, ["report", str(tmp_path / "r.json"), "--out",
                              str(tmp_path / "b"), "--format", "svg"])
    assert res.exit_code == 0, res.output
    # the JSON has no trace: the timeline is skipped, and the report says why
    assert "Figures not drawn: timeline (the result has no event trace" in \
        (tmp_path / "b" / "report.md").read_text()
    assert (tmp_path / "b" / "roofline.svg").is_file()
    assert (tmp_path / "b" / "roofline.png").is_file()   # the HTML embeds the PNG


def test_report_command_bad_input_exits_2(tmp_path):
    (tmp_path / "bad.json").write_text(json.dumps({"hardware": "h100-sxm"}))
    res = CliRunner().invoke(cli, ["report", str(tmp_path / "bad.json"), "--out",
                                   str(tmp_path / "o")])
    assert res.exit_code == 2
    assert "missing key" in res.output


def _checker():
    spec = importlib.util.spec_from_file_location("check_html_chromium",
                                                  ROOT / "scripts" / "check_html_chromium.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.skipif(_checker().find_chromium() is None,
                    reason="chromium not installed (apt-get install -y chromium)")
def test_html_renders_in_headless_chromium(bundle, tmp_path):
    checker = _checker()
    problems = checker.check(bundle.html, ["Summary", "Figures", "Provenance"],
                             min_images=len(FIGURES), screenshot=tmp_path / "shot.png")
    assert problems == []
    # the check can fail: a page whose images do not decode
    broken = tmp_path / "broken.html"
    broken.write_text(re.sub(r"base64,[A-Za-z0-9+/=]+", "base64,AAAA",
                             bundle.html.read_text()))
    problems = checker.check(broken, ["Summary"], min_images=1)
    assert any("images decoded" in p for p in problems)
