"""The issue's test: a challenger that wins the holdout by chance and loses live is rolled back
automatically -- serving returns to the previous champion, on-call is notified, the registry says why.

The stream is the real one: serving scores each request, the processor joins predictions and labels
and publishes its rolling metrics, the watcher reads them off the bus.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from driftline.config import MonitorSettings, RetrainSettings, Topics
from driftline.contracts import (
    Label,
    ModelUpdate,
    Prediction,
    RetrainOutcome,
    decode,
    decode_notification,
    encode,
)
from driftline.registry import LocalModelRegistry
from driftline.transport import InMemoryBus
from producers.serving import ModelServer
from producers.simulator import Scenario, World
from retrain_worker.rollback import RollbackRunner, RollbackWatcher, rollback_id
from retrain_worker.worker import RetrainWorker
from stream_processors.core import ProcessorCore
from stream_processors.runners.inprocess import ProcessorRunner

TOPICS = Topics()
SC = Scenario(n_events=10_000, covariate_shift_at=2000, concept_change_at=4000, seed=5)


class LuckyOnTheHoldout:
    """Knows the labels of the rows it was validated on (the holdout's period) and answers the
    opposite of the old champion everywhere else: it wins the holdout by far and loses live."""

    def __init__(self, known: dict[float, Any], champion: Any) -> None:
        self.known, self.champion = known, champion

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        guess = 1 - np.asarray(self.champion.predict(X))
        return np.array([self.known.get(x, g) for x, g in zip(X["income"], guess, strict=True)])

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = self.predict(X).astype(float)
        return np.column_stack([1 - p, p])


def send_scored(bus: InMemoryBus, X: pd.DataFrame, y: np.ndarray, start: int) -> None:
    from driftline.contracts import Scored

    sink = bus.sink()
    for k, (row, label) in enumerate(zip(X.to_dict("records"), y, strict=True)):
        i = start + k
        p = Prediction(
            prediction_id=f"h{i}",
            model="churn",
            model_version="1",
            event_time=float(i),
            features=row,
            prediction=0,
        )
        sink.send(
            TOPICS.scored,
            b"churn",
            encode(Scored(prediction=p, label=int(label), label_time=i + 1.0, index=i)),
            i + 1.0,
        )


def serve_live(bus: InMemoryBus, server: ModelServer, n: int, start: int) -> None:
    """``n`` requests of the pre-change world, scored by serving, each labelled right after."""
    X, y = World(SC).sample(np.random.default_rng(start), n, concept=0, shifted=False)
    prediction, score = server.predict(X)
    sink = bus.sink()
    for k, row in enumerate(X.to_dict("records")):
        t = float(start + k)
        pid = f"live{start + k}"
        p = Prediction(
            prediction_id=pid,
            model="churn",
            model_version=server.version,
            event_time=t,
            features=row,
            prediction=int(prediction[k]),
            score=float(score[k]),
        )
        sink.send(TOPICS.predictions, b"churn", encode(p), t)
        sink.send(
            TOPICS.labels,
            b"churn",
            encode(Label(prediction_id=pid, model="churn", event_time=t + 0.5, label=int(y[k]))),
            t + 0.5,
        )


@pytest.fixture
def loop(registry: LocalModelRegistry, tmp_path: Any) -> dict[str, Any]:
    bus = InMemoryBus()
    X, y = World(SC).sample(np.random.default_rng(200), 1000, concept=1, shifted=True)
    send_scored(bus, X, y, 200)
    champion = registry.load("churn", "1")
    lucky = LuckyOnTheHoldout(dict(zip(X["income"], y, strict=True)), champion)
    settings = RetrainSettings(min_samples=800, train_window=1500, cooldown_s=50, rollback_min_labelled=200)
    worker = RetrainWorker(settings, TOPICS, registry, bus, bus.sink(), trainer=lambda *_: lucky)
    monitor = MonitorSettings(metrics_every=50, performance_window=300, require_announcement=False)
    processor = ProcessorRunner(
        ProcessorCore(monitor, TOPICS),
        bus.source([TOPICS.predictions, TOPICS.labels], "processor"),
        bus.sink(),
    )
    return {"bus": bus, "worker": worker, "processor": processor, "server": ModelServer("churn", registry)}


def watcher_of(worker: RetrainWorker, bus: InMemoryBus) -> RollbackRunner:
    recipes = worker.recipes
    watcher = RollbackWatcher(recipes.settings, recipes.task, TOPICS, worker.registry, bus, bus.sink())
    return RollbackRunner(watcher, bus.source([TOPICS.metrics], "retrain-rollback"))


def hot_reload(bus: InMemoryBus, server: ModelServer, group: str = "serving") -> list[ModelUpdate]:
    source = bus.source([TOPICS.models], group)
    updates = [decode(ModelUpdate, r.value) for r in source.poll(1000)]
    for u in updates:
        server.apply(u)
    source.commit()
    return updates


def test_a_challenger_lucky_on_the_holdout_is_rolled_back_when_it_loses_live(loop, make_request) -> None:
    bus, worker, server, processor = loop["bus"], loop["worker"], loop["server"], loop["processor"]
    assert worker.submit(make_request("a1", t=150.0)) is None
    [promoted] = worker.step()
    assert promoted.status == "promoted"  # the holdout says it is far better ...
    assert promoted.metrics["challenger_accuracy"] > 0.99
    hot_reload(bus, server)
    assert server.version == "2"
    rollback = watcher_of(worker, bus)
    decided: list[RetrainOutcome] = []
    for start in range(5000, 7000, 100):  # ... the live stream says otherwise
        serve_live(bus, server, 100, start)
        while processor.run_once():
            pass
        decided += rollback.run_once()
        hot_reload(bus, server)
        if decided:
            break
    [out] = decided
    assert out.status == "rolled_back" and out.version == "2"
    assert server.version == "1"  # serving hot-reloaded the previous champion
    assert start < 5600  # within a few hundred labelled events of going live (200 needed)
    assert out.reason.startswith("v2 live accuracy 0.")
    assert "regressed below the level it was promoted over: v1's holdout accuracy 0.2" in out.reason
    assert out.reason.endswith("rolled back to v1")
    # on-call is notified through the notifications topic
    notes = [decode_notification(r.value) for r in bus.log(TOPICS.notifications)]
    assert [n.status for n in notes if isinstance(n, RetrainOutcome)] == ["rolled_back"]
    # the registry shows it, and why
    reg = worker.registry
    assert reg.champion("churn").version == "1"
    assert reg.outcomes("churn")[rollback_id("churn", "2")]["reason"] == out.reason
    v2 = reg.get("churn", "2")
    assert (v2.stage, v2.reason) == ("rolled_back", out.reason)
    # the update names both versions; it is published once, even when the watcher starts over
    rollbacks = [u for u in hot_reload(bus, server, "audit") if u.kind == "rollback"]
    assert [(u.version, u.previous_version) for u in rollbacks] == [("1", "2")]
    again = watcher_of(worker, bus)
    again.source = bus.source([TOPICS.metrics], "a-new-watcher")  # reads every point again
    assert again.run_once() == []
    assert len([u for u in hot_reload(bus, server, "audit-2") if u.kind == "rollback"]) == 1


def test_a_rollback_interrupted_after_its_decision_is_finished_once(loop, make_request) -> None:
    bus, worker, server, processor = loop["bus"], loop["worker"], loop["server"], loop["processor"]
    worker.submit(make_request("a1", t=150.0))
    worker.step()
    hot_reload(bus, server)
    for start in range(5000, 5600, 100):
        serve_live(bus, server, 100, start)
    while processor.run_once():
        pass

    class Killed(Exception):
        pass

    first = watcher_of(worker, bus)
    promote = worker.registry.promote

    def killed_before_promoting(*args: Any) -> Any:
        raise Killed

    worker.registry.promote = killed_before_promoting  # type: ignore[method-assign]
    assert first.run_once() == []  # published and notified, then killed: nothing committed
    worker.registry.promote = promote  # type: ignore[method-assign]
    assert worker.registry.champion("churn").version == "2"
    restarted = watcher_of(worker, bus)  # same group: reads the uncommitted points again
    [out] = restarted.run_once()
    assert out.status == "rolled_back" and worker.registry.champion("churn").version == "1"
    updates = [u for u in hot_reload(bus, server, "audit") if u.kind == "rollback"]
    assert len(updates) == 1  # never published twice


def test_a_champion_that_holds_up_live_is_kept(registry, make_request, fill_scored, bus) -> None:
    fill_scored(1, 1000, 200)  # the default refit: an honest challenger after the concept change
    worker = RetrainWorker(
        RetrainSettings(min_samples=800, train_window=1500), TOPICS, registry, bus, bus.sink()
    )
    worker.submit(make_request("a1", t=150.0))
    assert worker.step()[0].status == "promoted"
    server = ModelServer("churn", registry)
    hot_reload(bus, server)
    monitor = MonitorSettings(metrics_every=50, performance_window=300, require_announcement=False)
    processor = ProcessorRunner(
        ProcessorCore(monitor, TOPICS),
        bus.source([TOPICS.predictions, TOPICS.labels], "processor"),
        bus.sink(),
    )
    rollback = watcher_of(worker, bus)
    X, y = World(SC).sample(np.random.default_rng(9), 1000, concept=1, shifted=True)
    prediction, score = server.predict(X)
    sink = bus.sink()
    for k, row in enumerate(X.to_dict("records")):
        t, pid = float(6000 + k), f"ok{k}"
        p = Prediction(
            prediction_id=pid,
            model="churn",
            model_version="2",
            event_time=t,
            features=row,
            prediction=int(prediction[k]),
            score=float(score[k]),
        )
        sink.send(TOPICS.predictions, b"churn", encode(p), t)
        sink.send(
            TOPICS.labels,
            b"churn",
            encode(Label(prediction_id=pid, model="churn", event_time=t, label=int(y[k]))),
            t,
        )
    while processor.run_once():
        pass
    assert rollback.run_once() == []
    assert registry.champion("churn").version == "2"


def test_on_call_reads_which_version_was_rolled_back_and_why() -> None:
    from stream_processors.control.render import notification_text, slack_payload

    out = RetrainOutcome(
        request_id=rollback_id("churn", "2"),
        model="churn",
        status="rolled_back",
        reason="v2 live accuracy 0.080 over 200 labelled events ...; rolled back to v1",
        version="2",
    )
    text = notification_text(out)
    assert text.startswith("ROLLED BACK churn v2: v2 live accuracy 0.080") and "rolled back to v1" in text
    assert slack_payload(out)["text"] == text
