"""A paced replay on Kafka at 20x the closed-loop test's rate gives the embedded loop's model versions,
decided at the same event index and served from the same prediction -- exactly, not within a tolerance.
Its registry is MLflow behind a tracking server (when MLflow is installed: the dev extra has it), so the
same run shows the retrain worker's version there with its lineage, and that the backend changes no
decision."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from mlflow_kit import HAS_MLFLOW, mlflow_server

from driftline.app.demo import EmbeddedLoop, run_embedded
from driftline.app.kafka_demo import run_kafka_demo
from driftline.app.services import collect_topic
from driftline.config import DriftlineSettings, KafkaSettings, Topics
from driftline.contracts import ModelUpdate, Prediction, decode
from driftline.registry import ModelRegistry, open_registry
from producers.simulator import Scenario

pytestmark = pytest.mark.kafka

SCENARIO = Scenario(seed=7, n_events=24_000, covariate_shift_at=8_000, concept_change_at=14_000)


def _switches(predictions: list[Prediction]) -> list[tuple[int, str]]:
    """(stream index, version) wherever the served version changed."""
    out: list[tuple[int, str]] = []
    for p in sorted(predictions, key=lambda p: p.event_time):
        if not out or out[-1][1] != p.model_version:
            out.append((int(p.prediction_id.rsplit("-", 1)[1]), p.model_version))
    return out


def _decided(updates: list[ModelUpdate], first: Prediction, sc: Scenario) -> list[tuple[str, int]]:
    """(version, event index it serves from) of each promotion, from its effective_from."""
    return [
        (u.version, round((u.effective_from - first.event_time) * sc.events_per_second))
        for u in updates
        if u.kind == "promoted" and u.effective_from is not None
    ]


def _summary(predictions: list[Prediction], updates: list[ModelUpdate]) -> dict[str, Any]:
    first = min(predictions, key=lambda p: p.event_time)
    return {"switches": _switches(predictions), "decided": _decided(updates, first, SCENARIO)}


def test_a_paced_kafka_replay_at_20x_gives_the_embedded_versions_at_the_same_indices(
    kafka_bootstrap, tmp_path: Path
) -> None:
    loops: list[EmbeddedLoop] = []
    embedded = run_embedded(SCENARIO, on_start=loops.append)
    bus, topics = loops[0].bus, loops[0].topics
    want = _summary(
        [decode(Prediction, r.value) for r in bus.log(topics.predictions)],
        [decode(ModelUpdate, r.value) for r in bus.log(topics.models)],
    )
    assert want["switches"][1:] and want["decided"], want  # the embedded loop retrained and switched

    settings = DriftlineSettings(kafka=KafkaSettings(bootstrap_servers=kafka_bootstrap, partitions=3))
    with ExitStack() as stack:
        if HAS_MLFLOW:  # the registry the compose stack runs: the worker and serving reach it over HTTP
            url = stack.enter_context(mlflow_server(tmp_path / "mlflow"))
            retrain = settings.retrain.model_copy(update={"registry": "mlflow", "mlflow_tracking_uri": url})
            settings = settings.model_copy(update={"retrain": retrain})
        result = run_kafka_demo(SCENARIO, settings, rate=1500 * 20, pace=True)
        if HAS_MLFLOW:
            _check_mlflow_lineage(open_registry(settings.retrain, tmp_path / "reader"))
    run = Topics(**{k: f"{v}.{result.report['run_id']}" for k, v in settings.topics.model_dump().items()})
    on_kafka = settings.model_copy(update={"topics": run})
    got = _summary(
        [decode(Prediction, v) for v in collect_topic(on_kafka, run.predictions)],
        [decode(ModelUpdate, v) for v in collect_topic(on_kafka, run.models)],
    )
    assert got == want
    assert result.report["model_versions"] == embedded.report["model_versions"]


def _check_mlflow_lineage(registry: ModelRegistry) -> None:
    """The run's versions as the MLflow UI lists them: v1 (bootstrap) and v2, which the retrain worker
    process registered over HTTP with its alert, windows, metrics and lineage, and made champion."""
    v1, v2 = registry.versions("churn")[:2]
    assert (v1.triggered_by, v2.version) == ("bootstrap", "2")
    assert v2.triggered_by and v2.trained_on and v2.validated_on and v2.metrics
    assert {"data_sha256", "trainer", "params", "code_version", "run_id"} <= set(v2.lineage), v2.lineage
    assert v2.artifact_uri == "models:/churn/2" and len(v2.sha256) == 64
    assert registry.champion("churn").version != "1"
    assert registry.load("churn", "2", sha256=v2.sha256) is not None
