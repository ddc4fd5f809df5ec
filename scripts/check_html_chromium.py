#!/usr/bin/env python3
"""Check that a memsim HTML report renders in headless Chromium.

    python scripts/check_html_chromium.py out/report.html --heading Summary \
        --heading Figures --min-images 4 [--screenshot shot.png]

Two Chromium runs on a copy of the page:

1. ``--dump-dom`` of the page with a small script appended that records, after the load
   event, each image's decoded size (``naturalWidth``) as a ``data-decoded`` attribute: the
   check passes only if the expected ``<h1>/<h2>`` headings are present and at least
   ``--min-images`` images were actually decoded (a broken base64 payload decodes to 0×0).
2. ``--screenshot``: the PNG must exist and not be blank (enough non-background pixels).

Exit codes: 0 rendered, 1 a check failed, 3 Chromium not found (install the Debian package
``chromium``: ``apt-get install -y chromium``).
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from html.parser import HTMLParser
from pathlib import Path

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars", "--mute-audio")
_PROBE = """<script>window.addEventListener('load', function () {
  document.querySelectorAll('img').forEach(function (im) {
    im.setAttribute('data-decoded', im.complete ? im.naturalWidth + 'x' + im.naturalHeight
                                                : '0x0');
  });
  document.body.setAttribute('data-loaded', '1');
});</script>"""


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome binary on PATH, or None."""
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None


class _Dom(HTMLParser):
    def __init__(self):
        super().__init__()
        self.headings: list[str] = []
        self.images: list[dict] = []
        self.loaded = False
        self._in: str | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in ("h1", "h2"):
            self._in = tag
            self.headings.append("")
        elif tag == "img":
            self.images.append(a)
        elif tag == "body" and a.get("data-loaded") == "1":
            self.loaded = True

    def handle_endtag(self, tag):
        if tag == self._in:
            self._in = None

    def handle_data(self, data):
        if self._in:
            self.headings[-1] += data


def _run(chromium: str, args: list[str], profile: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([chromium, *FLAGS, f"--user-data-dir={profile}", *args],
                          capture_output=True, text=True, timeout=timeout)


def check(html_path: "str | Path", headings: list[str] = (), min_images: int = 1,
          screenshot: "str | Path | None" = None, chromium: str | None = None,
          timeout: float = 60.0) -> list[str]:
    """Render ``html_path``; returns the list of problems (empty when it rendered)."""
    chromium = chromium or find_chromium()
    if chromium is None:
        raise FileNotFoundError("chromium not found on PATH (apt-get install -y chromium)")
    src = Path(html_path).resolve()
    text = src.read_text(encoding="utf-8")
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="memsim-chromium-") as tmp:
        probe = Path(tmp) / "page.html"
        cut = text.rfind("</body>")
        probe.write_text(text[:cut] + _PROBE + text[cut:] if cut >= 0 else text + _PROBE,
                         encoding="utf-8")
        dom_run = _run(chromium, ["--virtual-time-budget=10000", "--dump-dom", probe.as_uri()],
                       str(Path(tmp) / "profile1"), timeout)
        if dom_run.returncode != 0 or "<html" not in dom_run.stdout:
            return [f"chromium --dump-dom failed (exit {dom_run.returncode}): "
                    f"{dom_run.stderr.strip()[-500:]}"]
        dom = _Dom()
        dom.feed(dom_run.stdout)
        if not dom.loaded:
            problems.append("the page's load event did not fire")
        found = [h.strip() for h in dom.headings]
        for h in headings:
            if not any(h in f for f in found):
                problems.append(f"heading {h!r} not found; headings: {found}")
        decoded = [im for im in dom.images
                   if im.get("data-decoded", "0x0").split("x")[0] not in ("", "0")]
        if len(decoded) < min_images:
            problems.append(f"{len(decoded)} of {len(dom.images)} images decoded, expected at "
                            f"least {min_images}")
        shot = Path(screenshot) if screenshot else Path(tmp) / "shot.png"
        shot_run = _run(chromium, ["--window-size=1200,2400", f"--screenshot={shot}",
                                   src.as_uri()], str(Path(tmp) / "profile2"), timeout)
        if not shot.is_file():
            problems.append(f"no screenshot written (exit {shot_run.returncode}): "
                            f"{shot_run.stderr.strip()[-300:]}")
        else:
            ink = _ink_fraction(shot)
            if ink < 0.01:
                problems.append(f"screenshot is blank ({ink:.2%} non-background pixels)")
    return problems


def _ink_fraction(png: Path) -> float:
    """Fraction of pixels that differ from the most common colour (the background)."""
    import numpy as np
    from matplotlib.image import imread
    img = imread(str(png))[..., :3]
    flat = (img.reshape(-1, 3) * 255).astype(np.int32)
    keys = flat[:, 0] * 65536 + flat[:, 1] * 256 + flat[:, 2]
    values, counts = np.unique(keys, return_counts=True)
    return 1.0 - counts.max() / counts.sum()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("html")
    ap.add_argument("--heading", action="append", default=[],
                    help="text that an <h1>/<h2> must contain (repeatable)")
    ap.add_argument("--min-images", type=int, default=1)
    ap.add_argument("--screenshot", default=None, help="keep the screenshot here")
    ap.add_argument("--chromium", default=None, help="browser binary (default: on PATH)")
    args = ap.parse_args(argv)
    try:
        problems = check(args.html, args.heading, args.min_images, args.screenshot,
                         args.chromium)
    except FileNotFoundError as exc:
        print(f"check_html_chromium: {exc}", file=sys.stderr)
        return 3
    for p in problems:
        print(f"check_html_chromium: {p}", file=sys.stderr)
    if not problems:
        print(f"check_html_chromium: {args.html} rendered in headless Chromium")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
