"""The closed loop on the real Kafka broker: the Kafka runner, the faust control plane and the retrain
worker as separate processes, asserting the same outcomes as the embedded demo; dead letters and
alert routing state on Kafka."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from closed_loop import check_closed_loop, check_incidents
from events import alert as make_alert
from prometheus_kit import BINARY as PROMETHEUS
from prometheus_kit import free_port, prometheus, query

from driftline.app.kafka_demo import run_kafka_demo
from driftline.app.services import announce_on_kafka, collect_topic, prepare_kafka, run_processor, wait_until
from driftline.app.ui import dashboard, standalone_feed
from driftline.config import DriftlineSettings, KafkaSettings, RoutingSettings, Topics
from driftline.contracts import (
    Alert,
    DeadLetter,
    Label,
    Prediction,
    RetrainRequest,
    Scored,
    alerts_in,
    decode,
    encode,
)
from driftline.kafka import KafkaSink
from driftline.transport import RecordRejected
from producers.simulator import Scenario

pytestmark = pytest.mark.kafka


COMPONENTS = ("process", "control-plane", "retrain-worker")
DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "dashboards" / "driftline.json"


@pytest.fixture(scope="module")
def kafka_loop(kafka_bootstrap, tmp_path_factory) -> Iterator[tuple[Any, Any, list[str], dict[str, Any]]]:
    """One closed-loop run on the broker, every component serving its /metrics; with a Prometheus
    scraping them all while it runs when the machine has one (``.ci/run`` installs it)."""
    scenario = Scenario(seed=7, n_events=24_000, covariate_shift_at=8_000, concept_change_at=14_000)
    settings = DriftlineSettings(kafka=KafkaSettings(bootstrap_servers=kafka_bootstrap, partitions=3))
    ports = {name: free_port() for name in COMPONENTS}
    lines: list[str] = []
    with ExitStack() as stack:
        base = None
        if PROMETHEUS is not None:
            base = stack.enter_context(prometheus(tmp_path_factory.mktemp("prometheus"), ports))
        result = run_kafka_demo(scenario, settings, rate=1500, echo=lines.append, metrics_ports=ports)
        yield scenario, result, lines, {"prometheus": base, "settings": settings}


def test_closed_loop_through_kafka(kafka_loop) -> None:
    scenario, result, lines, _ = kafka_loop
    report = result.report
    check_closed_loop(report, shift_at=8_000, concept_at=14_000)
    check_incidents(report, concept_at=14_000)
    assert report["labelled"] == report["events"] - scenario.n_events  # every label joined, none lost
    assert report["dead_letters"] == 0
    assert any("services ready" in line for line in lines)


@pytest.mark.skipif(PROMETHEUS is None, reason="no prometheus binary (apt-get install prometheus)")
def test_prometheus_scraped_every_component_and_has_the_drift_series(kafka_loop) -> None:
    """The same topology as the compose stack, without containers: Prometheus scraped the processor,
    the control plane and the retrain worker, and holds the per-feature drift series and the
    incidents and retrain outcomes each component exported (read over the run: the components have
    stopped, so their series are stale now)."""
    _, result, _, extra = kafka_loop
    base = extra["prometheus"]
    up = {r["metric"]["job"]: float(r["value"][1]) for r in query(base, "max_over_time(up[10m])")}
    assert up == {name: 1.0 for name in COMPONENTS}, up
    drift = query(
        base, 'max by (feature) (max_over_time(driftline_feature_drift_statistic{job="process"}[10m]))'
    )
    assert {"income", "region"} <= {r["metric"]["feature"] for r in drift}, drift
    levels = query(
        base, 'max by (feature) (max_over_time(driftline_feature_drift_level_ratio{job="process"}[9m]))'
    )
    every = {"age", "income", "tenure", "usage", "support_calls", "region", "plan", "__prediction_score__"}
    assert every <= {r["metric"]["feature"] for r in levels}, levels  # all features, alerted or not
    events = query(base, 'max_over_time(driftline_events_in_total{job="process"}[10m])')
    assert sum(float(r["value"][1]) for r in events) >= result.report["events"], events
    incidents = query(base, 'max_over_time(driftline_incidents{job="control-plane"}[10m])')
    assert incidents, "the control plane exported no incidents"
    retrains = query(base, 'max_over_time(driftline_retrain_outcomes_total{job="retrain-worker"}[10m])')
    outcomes = {r["metric"].get("status") for r in retrains}
    assert "promoted" in outcomes, retrains


@pytest.mark.skipif(PROMETHEUS is None, reason="no prometheus binary (apt-get install prometheus)")
def test_every_grafana_panel_has_data_for_the_run(kafka_loop) -> None:
    """What Grafana would draw: each panel and annotation query of the provisioned dashboard, for the
    run's model, returns series from the Prometheus that scraped the three components (dead letters
    excepted: the run has none)."""
    _, _, _, extra = kafka_loop
    dashboard_json = json.loads(DASHBOARD.read_text())
    queries = [(p["title"], t["expr"]) for p in dashboard_json["panels"] for t in p.get("targets", [])]
    queries += [(a["name"], a["expr"]) for a in dashboard_json["annotations"]["list"] if a.get("expr")]
    empty = []
    for title, expr in queries:
        expr = expr.replace("$model", "churn").replace("$__rate_interval", "30s")
        if not query(extra["prometheus"], f"max_over_time(({expr})[9m:2s])", timeout=10):
            empty.append(title)
    assert empty == ["Dead letters"], empty


def test_the_dashboard_reads_the_run_from_kafka(kafka_loop) -> None:
    """``driftline ui`` in Kafka mode: its feed reads the run's topics and the registry."""
    _, result, _, extra = kafka_loop
    run_id = result.report["run_id"]
    base: DriftlineSettings = extra["settings"]
    topics = Topics(**{k: f"{v}.{run_id}" for k, v in base.topics.model_dump().items()})
    settings = base.model_copy(update={"topics": topics})
    feed = standalone_feed(settings, None, str(Path(result.workdir) / "registry"), "")
    page = dashboard(feed.snapshot(), source="kafka")
    (model,) = page["models"]
    assert model["model"] == "churn"
    assert [v["version"] for v in model["versions"]][:2] == ["1", "2"], model["versions"]
    assert page["incidents"] and all(i["status"] == "resolved" for i in page["incidents"]), page["incidents"]


def test_malformed_events_are_dead_lettered_on_kafka(kafka_settings) -> None:
    settings = kafka_settings()
    t = settings.topics
    prepare_kafka(settings)
    announce_on_kafka(settings, "m", "1")  # the processor monitors announced versions only
    sink = KafkaSink(settings.kafka)  # type: ignore[arg-type]
    bad = [
        b"{not json",
        b'{"prediction_id": "x", "model": "m"}',
        b'{"prediction_id": "y", "model": "m", "event_time": "noon", "label": 1}',
    ]
    n, now = 400, time.time()  # timestamps near now: the broker's retention deletes old ones
    for i in range(n):
        p = Prediction(
            prediction_id=f"p{i}",
            model="m",
            model_version="1",
            event_time=now + i,
            features={"x": float(i % 5)},
            prediction=1,
            score=0.9,
        )
        sink.send(t.predictions, b"m", encode(p), now + i)
        if i == 100:
            sink.send(t.predictions, b"m", bad[0])
            sink.send(t.predictions, b"m", bad[1])
            sink.send(t.labels, b"m", bad[2])
        label = Label(prediction_id=f"p{i}", model="m", event_time=now + i + 0.5, label=1)
        sink.send(t.labels, b"m", encode(label), now + i + 0.5)  # stamped as the SDK does: not "future"
    sink.flush()
    stop = threading.Event()
    worker = threading.Thread(
        target=run_processor, args=(settings, stop.is_set), kwargs={"group": "dlq-test"}
    )
    worker.start()
    try:
        assert wait_until(lambda: len(collect_topic(settings, t.scored)) >= n, 60), "processor kept going"
        dead = [decode(DeadLetter, v) for v in collect_topic(settings, t.dlq)]
    finally:
        stop.set()
        worker.join(30)
    assert sorted(d.original for d in dead) == sorted(bad)
    for d in dead:
        assert d.reason and d.offset >= 0 and d.topic in (t.predictions, t.labels)
    assert len(collect_topic(settings, t.scored)) == n  # nothing lost, nothing doubled


def _what_it_saw(settings: DriftlineSettings, notes: list[bytes], dlq: list[bytes], logged: list[Any]) -> str:
    """What a control-plane run that did not route its alerts had: input, outputs, last warnings."""
    seen = {
        "alerts": len(collect_topic(settings, settings.topics.alerts)),
        "notifications": len(notes),
        "dlq": len(dlq),
    }
    warnings = [f"{r.name}: {r.getMessage()[:200]}" for r in logged][-20:]
    return f"records per topic {seen}; warnings: {warnings}"


def test_faust_control_plane_dedups_and_triggers_retrain(kafka_settings, tmp_path, caplog) -> None:
    """Replayed and cooled-down alerts are dropped, garbage is dead-lettered, a concept-drift alert
    asks for one retraining. The topics are read from a thread: a read blocks, and faust's agent
    runs on the event loop. A run that routes nothing says what it saw (its inputs, its outputs and
    faust's warnings) rather than only that nothing came out."""
    from stream_processors.control.faust_app import create_app

    caplog.set_level(logging.WARNING)

    settings = kafka_settings(routing=RoutingSettings(cooldown_s=60))
    t = settings.topics
    prepare_kafka(settings)

    def alert(i: str, kind: str, at: float) -> bytes:
        return encode(
            make_alert(i, t=at, kind=kind, feature="x" if kind == "data_drift" else None, model="m")
        )

    sink = KafkaSink(settings.kafka)  # type: ignore[arg-type]
    for value in [
        alert("a1", "concept_drift", 100),
        alert("a1", "concept_drift", 100),  # replayed
        alert("a2", "concept_drift", 120),  # within the cooldown
        alert("d1", "data_drift", 121),
        b"garbage",
    ]:
        sink.send(t.alerts, b"m", value)
    assert sink.flush() == 0
    assert wait_until(lambda: len(collect_topic(settings, t.alerts)) == 5, 30), "the alerts were not written"

    def routed() -> bool:
        return len(collect_topic(settings, t.notifications)) >= 2 and bool(collect_topic(settings, t.dlq))

    async def run() -> None:
        app = create_app(
            settings, app_id=f"cp-test-{uuid.uuid4().hex[:6]}", datadir=str(tmp_path / "faust"), sinks=[]
        )
        await app.start()
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline and not await asyncio.to_thread(routed):
                await asyncio.sleep(0.5)
            await asyncio.sleep(1.0)  # anything extra would show up now
        finally:
            await asyncio.wait_for(app.stop(), timeout=30)

    asyncio.run(asyncio.wait_for(run(), timeout=180))
    notes, dlq = collect_topic(settings, t.notifications), collect_topic(settings, t.dlq)
    delivered = [a.alert_id for a in alerts_in(notes)]
    retrain = [decode(RetrainRequest, v).request_id for v in collect_topic(settings, t.retrain)]
    dead = [decode(DeadLetter, v) for v in dlq]
    # (an assert's message is built only when it fails)
    assert sorted(delivered) == ["a1", "d1"], _what_it_saw(settings, notes, dlq, caplog.records)
    assert retrain == ["a1"]  # once per alert id; data drift alone does not retrain
    assert [(d.original, d.stage) for d in dead] == [(b"garbage", "route")]


def test_sdk_delivers_to_kafka_and_never_blocks_the_caller(kafka_settings) -> None:
    from producers.sdk import DriftlineClient

    settings = kafka_settings()
    prepare_kafka(settings)
    client = DriftlineClient(KafkaSink(settings.kafka), model="m", model_version="1", topics=settings.topics)
    ids = [client.log_prediction({"x": float(i), "c": "a"}, prediction=1, score=0.6) for i in range(1000)]
    for pid in ids[:500]:
        client.log_label(pid, 1)  # type: ignore[arg-type]
    client.close()  # flushes
    preds = [decode(Prediction, v) for v in collect_topic(settings, settings.topics.predictions)]
    assert sorted(p.prediction_id for p in preds) == sorted(ids)  # type: ignore[type-var]
    assert len(collect_topic(settings, settings.topics.labels)) == 500
    assert (client.stats["predictions"], client.stats["labels"], client.stats["dropped"]) == (1000, 500, 0)

    # a record over the producer's message.max.bytes: typed, never a raw KafkaException
    small: dict[str, Any] = {"message.max.bytes": 2000}
    topic = settings.topics.predictions
    with pytest.raises(RecordRejected) as caught:
        KafkaSink(settings.kafka, block=True, **small).send(topic, b"m", b"x" * 5000)
    assert (caught.value.topic, caught.value.size, caught.value.limit) == (topic, 5001, 2000)
    drops: list[tuple[str, str]] = []
    sized = DriftlineClient(
        KafkaSink(settings.kafka, **small),
        model="m",
        model_version="1",
        topics=settings.topics,
        on_drop=lambda e, reason: drops.append((getattr(e, "prediction_id", ""), reason)),
    )
    assert sized.log_prediction({"blob": "x" * 5000}, prediction=1, prediction_id="big") is None
    assert sized.log_prediction({"x": 1.0}, prediction=1, prediction_id="fits") == "fits"
    sized.close()
    assert drops == [("big", "rejected")]
    assert (sized.stats["predictions"], sized.stats["dropped"]) == (1, 1)
    assert sized.stats["dropped_by_reason"]["rejected"] == 1
    arrived = {decode(Prediction, v).prediction_id for v in collect_topic(settings, topic)}
    assert "fits" in arrived and "big" not in arrived

    # a broker that is not there and a 100-message queue: every call returns, and what was lost is
    # counted as lost (how long a call takes is measured by benchmarks/sdk.py, not asserted here)
    dead = KafkaSettings(bootstrap_servers="127.0.0.1:9")  # nothing listens on the discard port
    tiny: dict[str, Any] = {"queue.buffering.max.messages": 100, "message.timeout.ms": 2000}
    sink = KafkaSink(dead, **tiny)
    offline = DriftlineClient(sink, model="m", model_version="1")
    returned = [offline.log_prediction({"x": float(i)}, prediction=0) for i in range(1000)]
    stats = offline.stats
    assert stats["dropped"] + stats["predictions"] == 1000 and stats["dropped"] >= 900
    assert stats["predictions"] == sum(pid is not None for pid in returned)
    assert offline.flush(timeout=10) == 0  # returns once the queued messages time out; nothing raised
    after = offline.stats  # their delivery reports moved them from sent to dropped
    assert (after["predictions"], after["dropped"], sink.failed) == (0, 1000, 1000 - sink.dropped)
    assert after["dropped_by_reason"]["queue_full"] + after["dropped_by_reason"]["delivery_failed"] == 1000


def _stream(n: int, shift_at: int, now: float) -> list[tuple[str, bytes, float]]:
    """Model m: predictions (x1 shifts by 1 sd at ``shift_at``), each label right behind its prediction."""
    import numpy as np

    rng = np.random.default_rng(11)
    x0, x1 = rng.normal(size=n), rng.normal(size=n)
    x1[shift_at:] += 1.0
    out = []
    for i in range(n):
        t = now + i * 0.01
        p = Prediction(
            prediction_id=f"p{i}",
            model="m",
            model_version="1",
            event_time=t,
            features={"x0": float(x0[i]), "x1": float(x1[i])},
            prediction=i % 2,
            score=0.5,
        )
        out.append(("p", encode(p), t))
        out.append(("l", encode(Label(prediction_id=f"p{i}", model="m", event_time=t, label=i % 2)), t))
    return out


def test_processor_restart_resumes_from_its_checkpoint(kafka_settings, tmp_path) -> None:
    """Stopped after the shift began but before a window could show it, a restarted processor still
    flags it -- from the restored reference -- and nothing is double-counted."""
    from driftline.config import MonitorSettings

    settings = kafka_settings(monitor=MonitorSettings(reference_size=2000, window_size=500))
    t = settings.topics
    prepare_kafka(settings)
    announce_on_kafka(settings, "m", "1")  # the processor monitors announced versions only
    stream = _stream(6000, shift_at=4000, now=time.time())
    sink = KafkaSink(settings.kafka, block=True)  # type: ignore[arg-type]

    def produce(part: list[tuple[str, bytes, float]]) -> None:
        for kind, value, ts in part:
            sink.send(t.predictions if kind == "p" else t.labels, b"m", value, ts)
        sink.flush()

    def run_until_scored(n: int) -> None:
        stop = threading.Event()
        th = threading.Thread(
            target=run_processor,
            args=(settings, stop.is_set),
            kwargs={"group": "restart-test", "state_dir": str(tmp_path / "state")},
        )
        th.start()
        try:
            assert wait_until(lambda: len(collect_topic(settings, t.scored)) >= n, 60)
        finally:
            stop.set()
            th.join(30)
        assert not th.is_alive()

    def drift() -> list[Alert]:
        alerts = [decode(Alert, v) for v in collect_topic(settings, t.alerts)]
        return [a for a in alerts if a.type == "data_drift"]

    produce(stream[: 2 * 4010])  # predictions 0..4009: the shift began at 4000, too few rows to tell yet
    run_until_scored(4010)
    assert drift() == []
    assert list((tmp_path / "state" / "restart-test").glob("partition-*.ckpt"))

    produce(stream[2 * 4010 :])
    run_until_scored(6000)
    (found,) = drift()  # once, after the restart, within a few dozen rows of the shift
    assert (found.feature, found.window.start_index <= 4000 + 10) == ("x1", True)
    assert 4010 <= found.detected_at_index < 4200
    assert found.reference is not None and found.reference.end_index == 2000  # the restored one
    scored = [decode(Scored, v).prediction.prediction_id for v in collect_topic(settings, t.scored)]
    assert len(scored) == len(set(scored)) == 6000  # every label joined once across the restart
