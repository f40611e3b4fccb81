"""A real Prometheus (Debian's ``prometheus``, started here on a free loopback port) scrapes the
embedded demo's /metrics and answers a PromQL query with Driftline's per-feature drift series:
what the compose stack's Prometheus does with the services. ``.ci/run`` installs the package."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_kit import BINARY, query
from prometheus_kit import prometheus as running_prometheus

from driftline.app.demo import EmbeddedLoop
from driftline.app.metrics_export import serve_demo
from driftline.config import DriftlineSettings
from producers.simulator import Scenario

pytestmark = pytest.mark.skipif(BINARY is None, reason="no prometheus binary (apt-get install prometheus)")


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any, Path]]:
    """The seed-7 demo run to its end, its metrics served; a Prometheus scraping them every second."""
    scenario = Scenario(seed=7, n_events=60_000, covariate_shift_at=20_000, concept_change_at=35_000)
    loop = EmbeddedLoop(
        scenario, DriftlineSettings(), tempfile.mkdtemp(prefix="driftline-registry-"), lambda _: None
    )
    _, metrics = serve_demo(loop, 0)
    loop.run(500)
    work = tmp_path_factory.mktemp("prometheus")
    try:
        with running_prometheus(work, {"driftline": metrics.port}) as base:
            yield base, loop, work / "prometheus.log"
    finally:
        metrics.close()


def test_prometheus_returns_the_drift_series_of_each_shifted_feature(prometheus) -> None:
    base, _, log = prometheus
    result = query(base, 'driftline_feature_drift_statistic{job="driftline", model="churn"}')
    by_feature = {r["metric"]["feature"]: float(r["value"][1]) for r in result}
    assert {"income", "region"} <= set(by_feature), (result, log.read_text()[-3000:])
    assert all(v > 0 for v in by_feature.values())
    p_values = query(base, 'driftline_feature_drift_p_value{feature="income"}')
    assert p_values and float(p_values[0]["value"][1]) < 0.05, p_values


def test_the_rules_load_and_the_resolved_incidents_are_seen(prometheus) -> None:
    base, loop, _ = prometheus
    rules = httpx.get(f"{base}/api/v1/rules", timeout=5).json()["data"]["groups"]
    assert {g["name"] for g in rules} == {"driftline-pipeline", "driftline-models"}
    assert all(r["health"] != "err" for g in rules for r in g["rules"]), rules
    resolved = query(base, 'sum(driftline_incidents{state="resolved"})')
    assert resolved and float(resolved[0]["value"][1]) == len(loop.report()["incidents"])
