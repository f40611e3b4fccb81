"""The retrain worker on each registry backend: the version it registers carries its lineage (the
digest of the rows it trained on, the trainer, the parameters, the code version), its outcome is
recorded, and a restarted worker over a new registry object does not retrain the same request."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from events import alert

from driftline.config import RetrainSettings, Topics
from driftline.contracts import Prediction, RetrainRequest, Scored, encode
from driftline.registry import ModelRegistry, open_registry
from driftline.registry_lineage import data_sha256
from driftline.transport import InMemoryBus
from producers.simulator import Scenario, World, make_model
from retrain_worker.worker import RetrainWorker

SC = Scenario(n_events=10_000, covariate_shift_at=2000, concept_change_at=4000, seed=5)
SETTINGS = RetrainSettings(min_samples=800, train_window=1500, cooldown_s=50)
BACKENDS = [
    "local",
    pytest.param(
        "mlflow",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("mlflow") is None, reason="mlflow not installed (the dev extra has it)"
        ),
    ),
]


def _scored(bus: InMemoryBus, n: int, start: int) -> list[Scored]:
    """``n`` labelled events after the concept change, on the scored topic."""
    X, y = World(SC).sample(np.random.default_rng(start), n, concept=1, shifted=True)
    rows = []
    for k, (features, label) in enumerate(zip(X.to_dict("records"), y, strict=True)):
        i = start + k
        p = Prediction(
            prediction_id=f"p{i}",
            model="churn",
            model_version="1",
            event_time=float(i),
            features=features,
            prediction=0,
            score=0.5,
        )
        rows.append(Scored(prediction=p, label=int(label), label_time=i + 1.0, index=i))
        bus.sink().send(Topics().scored, b"churn", encode(rows[-1]), i + 1.0)
    return rows


@pytest.fixture(params=BACKENDS)
def registry_at(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """Where the registry of ``request.param`` lives, with a champion v1."""
    settings = RetrainSettings(registry=request.param)
    X, y = World(SC).sample(np.random.default_rng(0), 3000, concept=0, shifted=False)
    open_registry(settings, tmp_path).register("churn", make_model().fit(X, y))
    return tmp_path


def _open(root: Path) -> ModelRegistry:
    backend = "mlflow" if (root / "mlflow.db").exists() else "local"
    return open_registry(RetrainSettings(registry=backend), root)


def test_the_worker_registers_lineage_and_a_restart_does_not_retrain(registry_at: Path) -> None:
    bus, topics = InMemoryBus(), Topics()
    rows = _scored(bus, 2000, start=100)
    request = RetrainRequest(request_id="a1", model="churn", model_version="1", alert=alert("a1", t=100.0))
    worker = RetrainWorker(SETTINGS, topics, _open(registry_at), bus, bus.sink())
    assert worker.submit(request) is None
    (out,) = worker.step()
    assert (out.status, out.version) == ("promoted", "2")

    v2 = _open(registry_at).get("churn", "2")
    assert v2.triggered_by == "a1" and v2.stage == "champion" and v2.trained_on is not None
    window = v2.trained_on  # the rows it trained on: the span of event times its window names
    trained = [r for r in rows if window["start_time"] <= r.prediction.event_time <= window["end_time"]]
    assert len(trained) == window["n"]
    assert v2.lineage["data_sha256"] == data_sha256(trained)
    assert v2.lineage["trainer"] and v2.lineage["code_version"].startswith("driftline ")
    assert json.loads(v2.lineage["params"])  # the estimator's parameters, as strings
    window = json.loads(v2.lineage["trained_on_offsets"])  # where its training rows are on the topic
    first, last = window["partitions"]["0"]
    assert window["topic"] == topics.scored and last - first + 1 == len(trained)  # one partition here

    restarted = RetrainWorker(SETTINGS, topics, _open(registry_at), bus, bus.sink())
    again = restarted.submit(request)  # the same request, replayed after a restart
    assert again is not None and again.status != "promoted"
    assert [v.version for v in _open(registry_at).versions("churn")] == ["1", "2"]
