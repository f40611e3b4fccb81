"""A real Prometheus (Debian's ``prometheus``, started here on a free loopback port) scrapes the
embedded demo's /metrics and answers a PromQL query with Driftline's per-feature drift series:
what the compose stack's Prometheus does with the services. ``.ci/run`` installs the package."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from driftline.app.demo import EmbeddedLoop
from driftline.app.metrics_export import serve_demo
from driftline.config import DriftlineSettings
from producers.simulator import Scenario

BINARY = shutil.which("prometheus")
pytestmark = pytest.mark.skipif(BINARY is None, reason="no prometheus binary (apt-get install prometheus)")
RULES = Path(__file__).resolve().parents[2] / "deploy" / "prometheus" / "driftline.rules.yml"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Any]]:
    """The seed-7 demo run to its end, its metrics served; a Prometheus scraping them every second."""
    scenario = Scenario(seed=7, n_events=60_000, covariate_shift_at=20_000, concept_change_at=35_000)
    loop = EmbeddedLoop(
        scenario, DriftlineSettings(), tempfile.mkdtemp(prefix="driftline-registry-"), lambda _: None
    )
    _, metrics = serve_demo(loop, 0)
    loop.run(500)
    work = tmp_path_factory.mktemp("prometheus")
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {"job_name": "driftline", "static_configs": [{"targets": [f"127.0.0.1:{metrics.port}"]}]}
        ],
    }
    (work / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = _free_port()
    proc = subprocess.Popen(
        [
            BINARY or "prometheus",
            f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(work / "prometheus.log").open("w"),
    )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_ready(base, work / "prometheus.log")
        yield base, loop, work / "prometheus.log"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        metrics.close()


def _wait_ready(base: str, log: Path, timeout: float = 90.0) -> None:
    """Until Prometheus says it is ready (before that its API answers 503 Service Unavailable)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/-/ready", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass  # not listening yet
        time.sleep(0.5)
    raise AssertionError(f"Prometheus not ready after {timeout:.0f} s: {log.read_text()[-3000:]}")


def _query(base: str, expr: str, timeout: float = 90.0) -> list[dict[str, Any]]:
    """The query's result once it has one (Prometheus starts, then scrapes); [] after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            body = httpx.get(f"{base}/api/v1/query", params={"query": expr}, timeout=5).json()
            if body.get("status") == "success" and body["data"]["result"]:
                return list(body["data"]["result"])
        except (httpx.HTTPError, ValueError):
            pass  # not listening yet, or not serving queries yet (503, not JSON)
        time.sleep(1)
    return []


def test_prometheus_returns_the_drift_series_of_each_shifted_feature(prometheus) -> None:
    base, _, log = prometheus
    result = _query(base, 'driftline_feature_drift_statistic{job="driftline", model="churn"}')
    by_feature = {r["metric"]["feature"]: float(r["value"][1]) for r in result}
    assert {"income", "region"} <= set(by_feature), (result, log.read_text()[-3000:])
    assert all(v > 0 for v in by_feature.values())
    p_values = _query(base, 'driftline_feature_drift_p_value{feature="income"}')
    assert p_values and float(p_values[0]["value"][1]) < 0.05, p_values


def test_the_rules_load_and_the_resolved_incidents_are_seen(prometheus) -> None:
    base, loop, _ = prometheus
    rules = httpx.get(f"{base}/api/v1/rules", timeout=5).json()["data"]["groups"]
    assert {g["name"] for g in rules} == {"driftline-pipeline", "driftline-models"}
    assert all(r["health"] != "err" for g in rules for r in g["rules"]), rules
    resolved = _query(base, 'sum(driftline_incidents{state="resolved"})')
    assert resolved and float(resolved[0]["value"][1]) == len(loop.report()["incidents"])
