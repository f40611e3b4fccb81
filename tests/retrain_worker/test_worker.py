"""The retraining worker: waits for data, promotes a better model once, rejects, cools down."""

from __future__ import annotations

import numpy as np
import pytest
from events import alert

from driftline.config import RetrainSettings, Topics
from driftline.contracts import ModelUpdate, RetrainRequest, Scored, decode, encode
from driftline.registry import LocalModelRegistry
from driftline.transport import InMemoryBus
from producers.simulator import Scenario, World, make_model
from retrain_worker.worker import RetrainWorker

TOPICS = Topics()
SC = Scenario(n_events=10_000, covariate_shift_at=2000, concept_change_at=4000, seed=5)


def _fill_scored(bus: InMemoryBus, concept: int, n: int, start: int) -> None:
    X, y = World(SC).sample(np.random.default_rng(start), n, concept=concept, shifted=True)
    sink = bus.sink()
    from driftline.contracts import Prediction

    for k, (row, label) in enumerate(zip(X.to_dict("records"), y, strict=True)):
        i = start + k
        p = Prediction(
            prediction_id=f"p{i}",
            model="churn",
            model_version="1",
            event_time=float(i),
            features=row,
            prediction=0,
            score=0.5,
        )
        sink.send(
            TOPICS.scored,
            b"churn",
            encode(Scored(prediction=p, label=int(label), label_time=i + 1.0, index=i)),
            i + 1.0,
        )


@pytest.fixture
def world(tmp_path):
    registry = LocalModelRegistry(tmp_path / "reg")
    X, y = World(SC).sample(np.random.default_rng(0), 3000, concept=0, shifted=False)
    registry.register("churn", make_model().fit(X, y))
    bus = InMemoryBus()
    worker = RetrainWorker(
        RetrainSettings(min_samples=800, train_window=1500, cooldown_s=50), TOPICS, registry, bus, bus.sink()
    )
    return registry, bus, worker


def test_worker_waits_for_data_then_promotes_a_better_model_once(world) -> None:
    registry, bus, worker = world
    req = RetrainRequest(request_id="a1", model="churn", model_version="1", alert=alert("a1", t=100.0))
    assert worker.submit(req) is None
    _fill_scored(bus, concept=1, n=500, start=100)
    assert worker.step() == []  # 500 < min_samples: keeps waiting
    _fill_scored(bus, concept=1, n=1500, start=600)
    (out,) = worker.step()
    assert out.status == "promoted" and out.version == "2"
    assert out.metrics["challenger_accuracy"] > out.metrics["champion_accuracy"] + 0.3
    (update,) = [decode(ModelUpdate, r.value) for r in bus.log(TOPICS.models)]
    assert (update.version, update.previous_version, update.triggered_by) == ("2", "1", "a1")
    assert update.trained_on is not None and update.trained_on.start_time >= 100.0  # only post-drift data
    assert registry.champion("churn").version == "2"
    # the same alert again (a replay): no second retrain
    again = worker.submit(req)
    assert again is not None and again.status == "skipped" and "idempotent" in again.reason
    # an alert about the replaced version is stale
    stale = worker.submit(
        RetrainRequest(request_id="a9", model="churn", model_version="1", alert=alert("a9", t=500.0))
    )
    assert stale is not None and stale.reason.startswith("stale")


def test_worker_rejects_a_challenger_that_is_not_better(world) -> None:
    registry, bus, worker = world
    _fill_scored(bus, concept=0, n=2000, start=100)  # no real change: the champion is as good
    worker.submit(
        RetrainRequest(request_id="a1", model="churn", model_version="1", alert=alert("a1", t=100.0))
    )
    (out,) = worker.step()
    assert out.status == "rejected"
    assert registry.champion("churn").version == "1"
    assert registry.get("churn", "2").stage == "rejected"  # recorded, not promoted
    assert bus.log(TOPICS.models) == []


def test_worker_cooldown(world) -> None:
    _, _, worker = world
    worker.submit(
        RetrainRequest(request_id="a1", model="churn", model_version="1", alert=alert("a1", t=100.0))
    )
    out = worker.submit(
        RetrainRequest(request_id="a2", model="churn", model_version="1", alert=alert("a2", t=120.0))
    )
    assert out is not None and out.reason.startswith("cooldown")
