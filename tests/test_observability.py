"""Prometheus exposition, scraped over HTTP from a running embedded demo: what an operator's
Prometheus would see -- the drift per feature, the incidents, the retrain -- and every metric the
Grafana dashboard and the alerting rules query is one a component exports."""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from driftline.app.demo import EmbeddedLoop
from driftline.app.metrics_export import serve_demo
from driftline.config import DriftlineSettings
from driftline.observability import Exporter, MetricsServer
from producers.simulator import Scenario

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"


@pytest.fixture(scope="module")
def demo_metrics() -> Iterator[tuple[EmbeddedLoop, MetricsServer]]:
    """The seed-7 demo run to its end with its metrics served on a free loopback port."""
    scenario = Scenario(seed=7, n_events=60_000, covariate_shift_at=20_000, concept_change_at=35_000)
    settings = DriftlineSettings()
    loop = EmbeddedLoop(scenario, settings, tempfile.mkdtemp(prefix="driftline-registry-"), lambda _: None)
    _, server = serve_demo(loop, 0)
    loop.run(500)
    yield loop, server
    server.close()


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(url, timeout=10).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def exported_names(url: str) -> set[str]:
    """Every metric name the endpoint declares (HELP lines) or has a sample of."""
    text = httpx.get(url, timeout=10).text
    return set(re.findall(r"^# HELP (\S+)", text, re.M)) | set(
        re.findall(r"^(driftline_\w+)[{ ]", text, re.M)
    )


def test_the_demo_exports_drift_per_feature_incidents_and_the_retrain(demo_metrics) -> None:
    loop, server = demo_metrics
    samples = scrape(server.url)
    drift = {
        dict(labels)["feature"]: v
        for (name, labels), v in samples.items()
        if name == "driftline_feature_drift_statistic"
    }
    assert {"income", "region"} <= set(drift)  # the two shifted features, as the demo's alerts say
    for feature in ("income", "region"):
        threshold = samples[
            (
                "driftline_feature_drift_threshold",
                (("feature", feature), ("model", "churn"), ("version", "1")),
            )
        ]
        assert drift[feature] >= threshold
    assert samples[("driftline_retrain_outcomes_total", (("model", "churn"), ("status", "promoted")))] == 1
    resolved = sum(
        v
        for (name, labels), v in samples.items()
        if name == "driftline_incidents" and ("state", "resolved") in labels
    )
    firing = sum(
        v
        for (name, labels), v in samples.items()
        if name == "driftline_incidents" and ("state", "firing") in labels
    )
    assert (resolved, firing) == (len(loop.report()["incidents"]), 0)
    read = sum(v for (name, _), v in samples.items() if name == "driftline_events_in_total")
    assert read == loop.report()["events"]
    assert not any(name == "driftline_dead_letters_total" for name, _ in samples)
    versions = {
        dict(labels)["version"] for (name, labels), _ in samples.items() if name == "driftline_model_metric"
    }
    assert versions == {"1", "2"}
    assert samples[("driftline_label_coverage_ratio", (("model", "churn"), ("version", "2")))] > 0.9


def queried_names() -> dict[str, set[str]]:
    dashboard = json.loads((DEPLOY / "grafana" / "dashboards" / "driftline.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    exprs += [a["expr"] for a in dashboard["annotations"]["list"]]
    exprs += [v["definition"] for v in dashboard["templating"]["list"]]
    rules = yaml.safe_load((DEPLOY / "prometheus" / "driftline.rules.yml").read_text())
    rule_exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    find = lambda es: {n for e in es for n in re.findall(r"\bdriftline_\w+", e)}  # noqa: E731
    return {"dashboard": find(exprs), "rules": find(rule_exprs)}


def test_every_metric_the_dashboard_and_the_rules_query_is_exported(demo_metrics) -> None:
    _, server = demo_metrics
    exported = exported_names(server.url)
    for where, names in queried_names().items():
        assert len(names) >= 8, where
        assert names <= exported, f"{where} queries {sorted(names - exported)}, exported by no component"


def test_an_evicted_version_leaves_no_series() -> None:
    ex = Exporter("process", max_versions=2)
    server = ex.serve(0)
    try:
        from driftline.contracts import Alert, Window

        win = Window(start_index=0, end_index=10, start_time=0.0, end_time=1.0, n=10)
        for v in ("1", "2", "3"):
            a = Alert(
                alert_id=v,
                type="data_drift",
                model="m",
                model_version=v,
                feature="age",
                statistic="cusum_llr",
                value=20.0,
                threshold=15.0,
                window=win,
                detected_at_index=10,
                detected_at_time=1.0,
                p_value=1e-6,
            )
            ex.observe_outputs(alerts=[a])
        versions = {
            dict(labels)["version"] for (name, labels) in scrape(server.url) if "version" in dict(labels)
        }
        assert versions == {"2", "3"}
    finally:
        server.close()


def test_a_segment_metric_is_its_own_series_and_leaves_the_whole_traffic_alone() -> None:
    from driftline.contracts import Metric, Window

    ex = Exporter("process")
    win = Window(start_index=0, end_index=500, start_time=0.0, end_time=5.0, n=500)
    whole = Metric(model="m", model_version="1", name="accuracy", value=0.9, window=win)
    web = Metric(
        model="m", model_version="1", name="accuracy", value=0.4, window=win, segment={"channel": "web"}
    )
    ex.observe_outputs(metrics=[whole, web])
    labels = {"model": "m", "version": "1", "metric": "accuracy"}
    assert ex.value("driftline_model_metric", **labels, segment="") == 0.9
    assert ex.value("driftline_model_metric", **labels, segment="channel=web") == 0.4


def test_drift_levels_move_between_alerts() -> None:
    """The processor's drift gauges follow each feature's CUSUM between alerts: a feature creeping
    towards its threshold shows it before any alert does."""
    import numpy as np
    from events import record

    from driftline.app.metrics_export import ProcessorObserver
    from driftline.config import MonitorSettings, Topics
    from driftline.contracts import Prediction
    from stream_processors.core.processor import CoreOutput, ProcessorCore

    rng = np.random.default_rng(3)
    core = ProcessorCore(MonitorSettings(reference_size=500), Topics())
    observer = ProcessorObserver(Exporter("process"), core, every_s=0.0)

    def batch(start: int, n: int, shift: float) -> CoreOutput:
        recs = [
            record(
                Prediction(
                    prediction_id=str(i),
                    model="m",
                    model_version="1",
                    event_time=float(i),
                    features={"a": float(rng.normal(shift, 1)), "b": float(rng.normal())},
                    prediction=1,
                    score=0.5,
                )
            )  # fmt: skip
            for i in range(start, start + n)
        ]
        out = core.process(recs)
        observer.observe_batch(recs, out)
        return out

    assert batch(0, 600, 0.0).alerts == []
    level = {"model": "m", "version": "1"}
    before = observer.exporter.value("driftline_feature_drift_level_ratio", **level, feature="a")
    assert before is not None and before < 0.5
    assert batch(600, 25, 0.8).alerts == []  # not yet an alert ...
    after = observer.exporter.value("driftline_feature_drift_level_ratio", **level, feature="a")
    other = observer.exporter.value("driftline_feature_drift_level_ratio", **level, feature="b")
    assert after is not None and other is not None and after > max(before, other)  # ... but on its way
