"""The HTML reports in headless Chromium (Debian's package), driven over the DevTools protocol.

At a laptop (1366×768) and a phone (390×844) viewport: the page does not overflow horizontally,
the scorecard is in the first viewport, every chart image is decoded, and the page logs no console
error. Set ``ABM_SLA_SCREENSHOT_DIR`` to keep a screenshot of each first screen.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest

from abm_sla.services import reporting
from abm_sla.services.config_files import load_policy
from tests.unit.test_scorecard import sample_data

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync", "--hide-scrollbars",
         "--remote-debugging-port=0", "--remote-allow-origins=*"]
VIEWPORTS = {"desktop": (1366, 768), "phone": (390, 844)}
#: What the page reports about itself once loaded.
MEASURE = """JSON.stringify((() => {
  const card = document.getElementById("scorecard").getBoundingClientRect();
  return {
    scrollWidth: document.documentElement.scrollWidth, clientWidth: document.documentElement.clientWidth,
    innerHeight: window.innerHeight, scorecardTop: card.top, scorecardBottom: card.bottom,
    images: Array.from(document.images, img => ({id: img.id, ok: img.complete && img.naturalWidth > 0})),
    wide: Array.from(document.querySelectorAll("body *")).filter(e => e.closest(".scroll") === null
      && e.getBoundingClientRect().right > document.documentElement.clientWidth + 1).map(e => e.tagName).slice(0, 5),
    wideInPrint: Array.from(document.querySelectorAll("body *")).filter(e =>
      e.getBoundingClientRect().right > document.documentElement.clientWidth + 1).map(e => e.tagName).slice(0, 5),
  };
})())"""

pytestmark = pytest.mark.e2e


@dataclass
class Page:
    """One page load: its measurements, console errors and a PNG of the first screen (a PDF when printed)."""

    facts: dict
    errors: list[str] = field(default_factory=list)
    screenshot: bytes = b""


class Browser:
    """A headless Chromium and one DevTools websocket (flattened sessions)."""

    def __init__(self, profile: Path):
        from websockets.sync.client import connect

        self.process = subprocess.Popen([str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for line in self.process.stderr:  # "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/ID"
            if match := re.search(r"(ws://\S+)", line):
                break
        else:
            raise RuntimeError("chromium did not start its DevTools endpoint")
        self.socket = connect(match[1], max_size=None, open_timeout=30)
        self.ids = itertools.count(1)

    def send(self, method: str, params: dict | None = None, session: str | None = None,
             events: list[dict] | None = None) -> dict:
        """Call ``method``; events arriving meanwhile are appended to ``events``."""
        ident = next(self.ids)
        message = {"id": ident, "method": method, "params": params or {}}
        self.socket.send(json.dumps(message | ({"sessionId": session} if session else {})))
        while True:
            reply = json.loads(self.socket.recv(timeout=60))
            if reply.get("id") == ident:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]
            if events is not None and "method" in reply:
                events.append(reply)

    def wait_for(self, event: str, events: list[dict]) -> None:
        while not any(e["method"] == event for e in events):
            events.append(json.loads(self.socket.recv(timeout=60)))

    def open(self, url: str, width: int, height: int, media: str = "screen") -> Page:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        events: list[dict] = []
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable", session=session, events=events)
        self.send("Emulation.setDeviceMetricsOverride", {"width": width, "height": height, "deviceScaleFactor": 1,
                                                         "mobile": width < 600}, session, events)
        self.send("Emulation.setEmulatedMedia", {"media": media}, session, events)
        self.send("Page.navigate", {"url": url}, session, events)
        self.wait_for("Page.loadEventFired", events)
        facts = self.send("Runtime.evaluate", {"expression": MEASURE, "returnByValue": True}, session, events)
        shot = self.send("Page.captureScreenshot", {"format": "png"}, session, events)
        if media == "print":
            shot = self.send("Page.printToPDF", {}, session, events)
        self.send("Target.closeTarget", {"targetId": target}, events=events)
        return Page(json.loads(facts["result"]["value"]), console_errors(events), base64.b64decode(shot["data"]))

    def close(self) -> None:
        self.socket.close()
        self.process.terminate()
        self.process.wait(timeout=30)


def console_errors(events: list[dict]) -> list[str]:
    """Console errors, uncaught exceptions and browser log errors (failed loads) among ``events``."""
    out = []
    for event in events:
        params = event.get("params", {})
        if event["method"] == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            out.append(" ".join(str(arg.get("value", arg.get("description", ""))) for arg in params["args"]))
        elif event["method"] == "Runtime.exceptionThrown":
            out.append(params["exceptionDetails"].get("text", "exception"))
        elif event["method"] == "Log.entryAdded" and params["entry"]["level"] == "error":
            out.append(params["entry"]["text"])
    return out


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip("no /usr/bin/chromium: install it with `apt-get install -y --no-install-recommends chromium`")
    running = Browser(tmp_path_factory.mktemp("profile"))
    yield running
    running.close()


@pytest.fixture(scope="module")
def reports(tmp_path_factory) -> dict[str, Path]:
    """Both reports of the scorecard's sample data, the weekly one with a long tier-moves table."""
    out = tmp_path_factory.mktemp("report")
    data, policy = sample_data(), load_policy()
    weekly = reporting.build_weekly(data, "2026-W10", policy)
    moves = weekly.tables["tier_moves"]
    moves.frame = pd.concat([moves.frame] * 10, ignore_index=True)  # 40 rows: folded after the first ten
    return {"weekly": reporting.write_report(weekly, out)["html"],
            "quarterly": reporting.write_report(reporting.build_quarterly(data, "2026-Q1", policy), out)["html"]}


@pytest.mark.parametrize("viewport", VIEWPORTS)
@pytest.mark.parametrize("kind", ["weekly", "quarterly"])
def test_report_reads_on_a_laptop_and_a_phone(browser, reports, kind, viewport):
    width, height = VIEWPORTS[viewport]
    page = browser.open(reports[kind].as_uri(), width, height)
    facts = page.facts
    assert facts["clientWidth"] == width
    assert facts["scrollWidth"] <= facts["clientWidth"], f"page overflows horizontally: {facts['wide']}"
    assert not facts["wide"]
    assert 0 <= facts["scorecardTop"] < 0.25 * height  # the scorecard opens the page
    if viewport == "desktop":
        assert facts["scorecardBottom"] <= height  # both sides entirely in the first viewport
    expected = 3 if kind == "weekly" else 4
    assert len(facts["images"]) == expected and all(image["ok"] for image in facts["images"]), facts["images"]
    assert page.errors == []
    if folder := os.environ.get("ABM_SLA_SCREENSHOT_DIR"):
        Path(folder).mkdir(parents=True, exist_ok=True)
        (Path(folder) / f"{kind}-{width}x{height}.png").write_bytes(page.screenshot)
    assert page.screenshot.startswith(b"\x89PNG")


def test_the_checks_can_fail(browser, tmp_path):
    """A broken image, a console error and a too-wide element are all caught."""
    page = tmp_path / "bad.html"
    page.write_text('<html><body><section id="scorecard">x</section>'
                    '<img id="broken" src="data:image/png;base64,AAAA"><div style="width:2000px">wide</div>'
                    '<script>console.error("boom")</script></body></html>', encoding="utf-8")
    result = browser.open(page.as_uri(), 390, 844)
    assert result.facts["scrollWidth"] > result.facts["clientWidth"]
    assert "DIV" in result.facts["wide"]
    assert result.facts["images"] == [{"id": "broken", "ok": False}]
    assert "boom" in result.errors


@pytest.mark.parametrize("kind", ["weekly", "quarterly"])
def test_the_meeting_pack_prints_within_the_page(browser, reports, kind):
    """Print media at an A4 page's width (718 px inside the margins): every table fits, nothing is cut."""
    page = browser.open(reports[kind].as_uri(), 718, 1000, media="print")
    assert page.facts["scrollWidth"] <= 718 and page.facts["wideInPrint"] == []
    assert page.screenshot.startswith(b"%PDF") and page.errors == []
