"""Automatic rollback on the real broker: ``driftline retrain-worker`` reads a promoted version's live
metrics off the metrics topic and, once they show it clearly worse than the champion it replaced,
serving is told to return to that champion (a ``rollback`` ModelUpdate), on-call is notified and the
registry says why. The rollback is published once, also by a worker killed after it and restarted."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition

from driftline.app.services import collect_topic, prepare_kafka, wait_until
from driftline.config import DriftlineSettings, RetrainSettings
from driftline.contracts import (
    Metric,
    ModelUpdate,
    RetrainOutcome,
    Window,
    decode,
    decode_notification,
    encode,
)
from driftline.kafka import KafkaSink
from driftline.registry import LocalModelRegistry
from integration.test_retrain_worker_kafka import Worker
from producers.simulator import make_model
from retrain_worker.rollback import rollback_id

pytestmark = pytest.mark.kafka

GROUP = "rollback-kafka-test"

# what fit_and_validate records at a promotion: v1 scored 0.80 on the holdout (bounds at 95 %),
# the "lucky" v2 0.99 on the same rows
PROMOTION = {
    "challenger_accuracy": 0.99,
    "challenger_accuracy_ci_low": 0.97,
    "challenger_accuracy_ci_high": 1.0,
    "champion_accuracy": 0.80,
    "champion_accuracy_ci_low": 0.75,
    "champion_accuracy_ci_high": 0.85,
    "n_train": 800.0,
    "n_validation": 300.0,
}


def _live(version: str, name: str, value: float, start: int, n: int, now: float) -> Metric:
    """A processor's rolling metric point of ``version`` over ``n`` labelled events from ``start``."""
    at = now - 60 + 0.01 * (start - 5000)  # event times just past: a broker refuses far-future timestamps
    w = Window(start_index=start, end_index=start + n, start_time=at, end_time=at + 0.01 * n, n=n)
    return Metric(model="churn", model_version=version, name=name, value=value, window=w)


def _send(sink: KafkaSink, topic: str, points: list[Metric]) -> None:
    for m in points:
        sink.send(topic, b"churn", encode(m), m.window.end_time)
    assert sink.flush(30) == 0


def _judged(settings: DriftlineSettings, group: str) -> int:
    """The rollback consumer's committed offset on the metrics topic: points read and decided."""
    assert settings.kafka is not None
    c = Consumer({"bootstrap.servers": settings.kafka.bootstrap_servers, "group.id": group})
    try:
        [tp] = c.committed([TopicPartition(settings.topics.metrics, 0)], timeout=10)
        return max(tp.offset, 0)
    finally:
        c.close()


def _rollbacks(settings: DriftlineSettings) -> list[tuple[str, str | None]]:
    updates = [decode(ModelUpdate, v) for v in collect_topic(settings, settings.topics.models)]
    return [(u.version, u.previous_version) for u in updates if u.kind == "rollback"]


def _rolled_back_notes(settings: DriftlineSettings) -> list[RetrainOutcome]:
    notes = [decode_notification(v) for v in collect_topic(settings, settings.topics.notifications)]
    return [n for n in notes if isinstance(n, RetrainOutcome) and n.status == "rolled_back"]


def test_a_version_that_loses_live_is_rolled_back_once_on_kafka(kafka_settings, tmp_path: Path) -> None:
    reg_dir = tmp_path / "registry"
    settings = kafka_settings(
        partitions=1, retrain=RetrainSettings(registry_dir=str(reg_dir), rollback_min_labelled=200)
    )
    t = settings.topics
    prepare_kafka(settings)
    registry = LocalModelRegistry(reg_dir)
    registry.register("churn", make_model())
    registry.register("churn", make_model(), metrics=PROMOTION, triggered_by="a1")  # v1 archived
    assert registry.champion("churn").version == "2"

    sink = KafkaSink(settings.kafka, block=True)  # type: ignore[arg-type]
    now = time.time()
    # v2 live: fully labelled, a little worse than v1 at first (not significant over 150 events),
    # then clearly worse over 300 (Clopper-Pearson upper bound of 0.55 well below v1's 0.75)
    points = [
        _live("2", "label_coverage", 1.0, 5000, 150, now),
        _live("2", "accuracy", 0.70, 5000, 150, now),  # too few labelled events to judge
        _live("2", "label_coverage", 0.98, 5000, 300, now),
        _live("2", "accuracy", 0.55, 5000, 300, now),
    ]
    _send(sink, t.metrics, points)

    env = {**os.environ, **settings.to_env(), "DRIFTLINE_LOG_LEVEL": "INFO"}
    rollback_group = f"{GROUP}-rollback"  # the worker's metrics consumer (services.run_retrain_worker)
    first = Worker(env, reg_dir, GROUP, tmp_path / "first.log")
    try:
        assert wait_until(lambda: first.says("rolled back to v1"), 30, 0.2), first.text()
        assert wait_until(lambda: _judged(settings, rollback_group) == len(points), 15, 0.2), first.text()
    finally:
        first.stop(signal.SIGKILL)  # killed right after the rollback

    assert _rollbacks(settings) == [("1", "2")]  # serving is told to return to v1
    [note] = _rolled_back_notes(settings)  # on-call is notified
    assert note.request_id == rollback_id("churn", "2") and note.version == "2"
    assert note.reason.startswith("v2 live accuracy 0.550 over 300 labelled events")
    assert "v1's holdout accuracy 0.800" in note.reason and note.reason.endswith("rolled back to v1")
    assert registry.champion("churn").version == "1"
    v2 = registry.get("churn", "2")
    assert (v2.stage, v2.reason) == ("rolled_back", note.reason)
    assert registry.outcomes("churn")[note.request_id]["status"] == "rolled_back"

    # a restarted worker reads another bad point of v2: it is no longer champion, nothing more happens
    second = Worker(env, reg_dir, GROUP, tmp_path / "second.log")
    try:
        _send(sink, t.metrics, [_live("2", "accuracy", 0.40, 5300, 300, now)])
        judged_all = lambda: _judged(settings, rollback_group) == len(points) + 1  # noqa: E731
        assert wait_until(judged_all, 30, 0.2), second.text()
    finally:
        second.stop(signal.SIGTERM)
    assert second.proc.returncode == 0, second.text()
    assert _rollbacks(settings) == [("1", "2")]  # never published twice
    assert len(_rolled_back_notes(settings)) == 1
    assert registry.champion("churn").version == "1" and registry.get("churn", "2").stage == "rolled_back"
