"""The dashboard page in a real browser: `driftline demo --ui` runs a short seeded loop and keeps
serving; headless Chromium (Debian package ``chromium``) loads the page, and the rendered DOM must show
what a person would look for -- the model, v1 and v2 with lineage, the data-drift incident naming
income and region, both incidents resolved, a drift row per feature, a quality chart. The screenshot
is kept under tests/artifacts/ (git-ignored). Skipped when chromium is absent."""

from __future__ import annotations

import importlib.util
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
from html.parser import HTMLParser
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
FEATURES = {"age", "income", "plan", "region", "support_calls", "tenure", "usage"}

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium not installed (apt-get install chromium)")


class Dom(HTMLParser):
    """The rendered page's elements with their attributes, and the text under each element kind."""

    def __init__(self) -> None:
        super().__init__()
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.rows: dict[str, list[str]] = {}  # tr class -> the text of each such row
        self._row: tuple[str, list[str]] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.elements.append((tag, a))
        if tag == "tr":
            self._row = (a.get("class", ""), [])

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr" and self._row is not None:
            self.rows.setdefault(self._row[0], []).append(" ".join(self._row[1]))
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._row is not None and data.strip():
            self._row[1].append(data.strip())

    def having(self, tag: str, **attrs: str) -> list[dict[str, str]]:
        return [a for t, a in self.elements if t == tag and all(a.get(k) == v for k, v in attrs.items())]


def chromium(*args: str) -> str:
    assert CHROMIUM is not None
    flags = ["--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars", "--no-first-run"]
    flags += ["--window-size=1280,1800", "--virtual-time-budget=10000"]  # lets the page's fetch finish
    out = subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    """`driftline demo --ui` on a free port, run to its end (the JSON line), still serving."""
    env = dict(os.environ, DRIFTLINE_LOG_LEVEL="WARNING")
    if importlib.util.find_spec("evidently") is not None:
        env["DRIFTLINE_ROUTING__REPORTS_DIR"] = str(tmp_path_factory.mktemp("reports"))
    cmd = [sys.executable, "-m", "driftline.app", "demo", "--ui", "--ui-port", "0", "--json"]
    proc = subprocess.Popen(
        [*cmd, "--seed", "1", "--events", "30000"], stdout=subprocess.PIPE, text=True, env=env
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout or []], daemon=True).start()
    url, out = None, []
    try:
        while True:
            line = lines.get(timeout=180)
            out.append(line)
            url = url or next(iter(re.findall(r"dashboard: (http://127\.0\.0\.1:\d+/)", line)), None)
            if line.startswith("{"):
                break
        assert url, "".join(out)
        yield url, proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def dom(served) -> Dom:
    url, _ = served
    parsed = Dom()
    parsed.feed(chromium("--dump-dom", url))
    return parsed


def test_the_page_renders_the_model_and_its_versions_with_lineage(dom: Dom) -> None:
    assert dom.having("body", **{"data-loaded": "1"}), "the page never rendered the dashboard"
    assert dom.having("section", **{"data-model": "churn"})
    v1, v2 = dom.rows["version"], dom.rows["version champion"]
    assert v1[0].startswith("v1 ") and "bootstrap" in v1[0]
    (row,) = v2
    assert (
        row.startswith("v2 (champion)") and "retrained after incident" in row and "model performance" in row
    )


def test_the_drift_incident_names_income_and_region_and_both_are_resolved(dom: Dom) -> None:
    incidents = dom.rows["incident"]
    assert len(incidents) == 2 and all(" resolved " in f" {r} " for r in incidents)
    drift = next(r for r in incidents if "data_drift" in r)
    assert "income, region" in drift
    assert len(dom.having("tr", **{"data-status": "resolved"})) == 2


def test_a_drift_row_per_feature(dom: Dom) -> None:
    rows = {a["data-feature"] for a in dom.having("tr", **{"class": "drift-row"})}
    assert rows == FEATURES
    text = {r.split()[0]: r for r in dom.rows["drift-row"]}
    assert {f for f, r in text.items() if "no drift" not in r} == {"income", "region"}
    assert "cusum_llr" in text["income"] and "#0–#2000" in text["income"]


def test_a_quality_chart_with_a_line_per_metric(dom: Dom) -> None:
    assert dom.having("svg", **{"class": "quality-chart"})
    lines = {a["data-metric"]: a["points"] for a in dom.having("polyline")}
    assert {"accuracy", "expected_accuracy"} <= set(lines)
    assert len(lines["accuracy"].split()) > 20  # a point per window, v1 and v2


def test_the_evidence_links_serve_the_reports(served, dom: Dom) -> None:
    if importlib.util.find_spec("evidently") is None:
        pytest.skip("evidence reports need evidently")
    links = [a["href"] for a in dom.having("a", **{"class": "evidence"})]
    assert any(h.endswith(".html") for h in links) and all(h.startswith("/reports/") for h in links)
    url, _ = served
    page = chromium("--dump-dom", url + links[0].lstrip("/"))
    assert "income" in page


def test_a_screenshot_is_kept(served) -> None:
    url, _ = served
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "ui.png"
    shot.unlink(missing_ok=True)
    chromium(f"--screenshot={shot}", url)
    print(f"screenshot: {shot}")
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_demo_stops_cleanly_on_sigterm(served) -> None:
    _, proc = served
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
