"""`driftline ui`'s JSON endpoint and report serving, against a short seeded embedded demo run: what
the page would show (the model, v1 and v2 with lineage, drift per feature, quality, incidents)."""

from __future__ import annotations

import importlib.util
import json
import os
import urllib.error
import urllib.request
from typing import Any

import pytest

from driftline.app import ui
from driftline.app.demo import run_embedded
from driftline.config import DriftlineSettings, RoutingSettings
from driftline.registry import LocalModelRegistry
from producers.simulator import Scenario

HAS_EVIDENTLY = importlib.util.find_spec("evidently") is not None
FEATURES = ["age", "income", "plan", "region", "support_calls", "tenure", "usage"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One seeded run (30,000 predictions: drift at #10,000, concept change at #17,500), its page
    served from its bus while it runs; the first snapshot is taken before any event."""
    base = tmp_path_factory.mktemp("ui")
    reports = str(base / "reports") if HAS_EVIDENTLY else ""
    settings = DriftlineSettings(routing=RoutingSettings(store_dir=str(base / "store"), reports_dir=reports))
    scenario = Scenario(seed=1, n_events=30_000, covariate_shift_at=10_000, concept_change_at=17_500)
    got: dict[str, Any] = {"base": base, "reports": reports}

    def on_start(loop: Any) -> None:
        feed = ui.BusFeed(loop.bus, loop.topics, loop.registry, reports)
        got["before"] = ui.dashboard(feed.snapshot(), source=feed.source)
        got["server"] = ui.serve(feed, "127.0.0.1", 0, say=lambda _: None)

    got["result"] = run_embedded(scenario, settings, registry_dir=str(base / "registry"), on_start=on_start)
    yield got
    got["server"].stop()


def fetch(server: ui.DashboardServer, path: str) -> tuple[int, bytes, Any]:
    try:
        with urllib.request.urlopen(server.url + path.lstrip("/"), timeout=30) as r:
            return r.status, r.read(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.read(), e.headers


@pytest.fixture(scope="module")
def page(demo: dict[str, Any]) -> dict[str, Any]:
    status, body, headers = fetch(demo["server"], "/api/dashboard")
    assert status == 200 and headers["Content-Type"] == "application/json"
    return json.loads(body)


def test_before_the_stream_only_the_announced_version_shows(demo: dict[str, Any]) -> None:
    (model,) = demo["before"]["models"]
    assert [v["version"] for v in model["versions"]] == ["1"]
    assert model["quality"] == {} and demo["before"]["incidents"] == []


def test_versions_carry_their_lineage(page: dict[str, Any]) -> None:
    (model,) = page["models"]
    assert model["model"] == "churn" and model["champion"] == "2"
    v1, v2 = model["versions"]
    assert (v1["version"], v1["triggered_by"], v1["incident"]) == ("1", "bootstrap", None)
    perf = next(i for i in page["incidents"] if i["kind"] == "performance")
    assert v2["version"] == "2" and v2["previous_version"] == "1" and v2["incident"] == perf["id"]
    assert v2["trained_on"]["end_index"] == v2["validated_on"]["start_index"] > 17_500
    assert v2["metrics"]["challenger_accuracy"] > v2["metrics"]["champion_accuracy"]


def test_a_drift_row_per_feature_with_its_statistic_and_window(page: dict[str, Any]) -> None:
    rows = {r["feature"]: r for r in page["models"][0]["drift"]}
    assert sorted(rows) == FEATURES
    assert {f for f, r in rows.items() if r["drifted"]} == {"income", "region"}
    for f in ("income", "region"):
        r = rows[f]
        assert r["statistic"] and r["value"] > r["threshold"] and r["version"] == "1"
        assert r["reference"]["end_index"] <= r["window"]["start_index"] <= r["detected_at"] < 12_000
        assert r["detected_at"] >= 10_000


def test_quality_over_time_spans_both_versions(page: dict[str, Any]) -> None:
    acc = page["models"][0]["quality"]["accuracy"]
    ends = [p[0] for p in acc]
    assert ends == sorted(ends) and {p[2] for p in acc} == {"1", "2"}
    low = min(p[1] for p in acc if p[2] == "1" and p[0] > 18_500)
    assert low < 0.8 and acc[-1][2] == "2" and acc[-1][1] > 0.85  # the drop, then the recovery


def test_incidents_resolved_with_evidence(demo: dict[str, Any], page: dict[str, Any]) -> None:
    by_kind = {i["kind"]: i for i in page["incidents"]}
    assert set(by_kind) == {"data_drift", "performance"}
    assert all(i["status"] == "resolved" for i in page["incidents"])
    assert by_kind["data_drift"]["features"] == ["income", "region"]
    assert [r["status"] for r in page["retrains"]] == ["promoted"]
    if not HAS_EVIDENTLY:
        pytest.skip("evidence reports need evidently")
    links = by_kind["data_drift"]["evidence"]
    assert {link["name"].rsplit(".", 1)[1] for link in links} == {"html", "json"}
    status, body, _ = fetch(demo["server"], links[0]["url"])
    path = os.path.join(demo["reports"], links[0]["name"])
    assert status == 200 and body == open(path, "rb").read()


@pytest.mark.parametrize(
    "path", ["/reports/..%2Fstore%2Fnotifications.jsonl", "/reports/../x.json", "/reports/nope.json", "/x"]
)
def test_nothing_outside_the_reports_is_served(demo: dict[str, Any], path: str) -> None:
    assert fetch(demo["server"], path)[0] == 404


def test_the_page_and_its_script_are_served_offline(demo: dict[str, Any]) -> None:
    status, html, headers = fetch(demo["server"], "/")
    assert (
        status == 200
        and b'<script src="/app.js">' in html
        and b"http" not in html.replace(b"http-equiv", b"")
    )
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    status, js, _ = fetch(demo["server"], "/app.js")
    assert status == 200 and b"/api/dashboard" in js and b"innerHTML" not in js


def test_the_store_alone_gives_incidents_and_versions(demo: dict[str, Any]) -> None:
    """`driftline ui --store DIR --registry DIR` after an embedded run: no metrics, the rest."""
    base = demo["base"]
    feed = ui.StoreFeed(str(base / "store"), LocalModelRegistry(str(base / "registry")))
    got = ui.dashboard(feed.snapshot(), source=feed.source)
    (model,) = got["models"]
    assert [v["version"] for v in model["versions"]] == ["1", "2"] and model["quality"] == {}
    assert model["versions"][1]["incident"] is not None
    assert {r["feature"] for r in model["drift"] if r["drifted"]} == {"income", "region"}
    assert [i["status"] for i in got["incidents"]] == ["resolved", "resolved"]
