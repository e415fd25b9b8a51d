"""Headless Chromium opens the HTML report over file:// and the charts display (images decoded)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import matplotlib.image
import numpy as np
import pytest

from abm_sla import reporting
from abm_sla.policy import load_policy
from tests.unit.test_scorecard import sample_data

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync", "--window-size=1280,2000"]
#: Appended to a copy of the page: after load, each <img> records whether the browser decoded it.
PROBE = """<script>window.addEventListener("load", () => {
  for (const img of document.images) {
    img.setAttribute("data-decoded", img.complete && img.naturalWidth > 0 ? "yes" : "no");
    img.setAttribute("data-width", String(img.naturalWidth));
  }
});</script>"""

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def report_html(tmp_path_factory) -> Path:
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium: install it with `apt-get install -y --no-install-recommends chromium`")
    out = tmp_path_factory.mktemp("report")
    return reporting.write_report(reporting.build_quarterly(sample_data(), "2026-Q1", load_policy()), out)["html"]


def chromium(*args: str, profile: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                          text=True, timeout=120, check=False)


def test_charts_are_decoded_in_the_dom(report_html, tmp_path):
    probed = tmp_path / "probed.html"
    probed.write_text(report_html.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"), encoding="utf-8")
    result = chromium("--virtual-time-budget=5000", "--dump-dom", probed.as_uri(), profile=tmp_path / "profile")
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    assert dom.count("<img ") == 4
    assert dom.count('data-decoded="yes"') == 4, dom[:2000]
    assert 'data-width="0"' not in dom
    assert "SLA quarterly review 2026-Q1" in dom


def test_screenshot_shows_the_page(report_html, tmp_path):
    shot = tmp_path / "page.png"
    result = chromium(f"--screenshot={shot}", report_html.as_uri(), profile=tmp_path / "profile")
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[:2] == (2000, 1280)
    colours = np.unique((pixels[..., :3] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 100  # text, tables and chart colours, not a blank page
    assert (pixels[..., :3] < 0.9).any(axis=2).mean() > 0.02


@pytest.mark.skipif(shutil.which("chromium") is None and not CHROMIUM.exists(), reason="no chromium")
def test_probe_detects_a_broken_image(tmp_path):
    """The probe can fail: a corrupt data URI is reported as not decoded."""
    page = tmp_path / "broken.html"
    page.write_text('<html><body><img src="data:image/png;base64,AAAA">' + PROBE + "</body></html>")
    result = chromium("--virtual-time-budget=5000", "--dump-dom", page.as_uri(), profile=tmp_path / "profile")
    assert 'data-decoded="no"' in result.stdout
