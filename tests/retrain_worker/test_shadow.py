"""The shadow period: a challenger that won its holdout serves in shadow -- serving scores every
request with both versions, the processor monitors both -- and is promoted only after N labelled
shadow predictions, and only if it wins them; the contract's older bytes still decode."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from driftline.config import MonitorSettings, RetrainSettings, Topics
from driftline.contracts import (
    Metric,
    ModelUpdate,
    Prediction,
    RetrainOutcome,
    decode,
    decode_notification,
    encode,
)
from driftline.registry import LocalModelRegistry
from driftline.transport import InMemoryBus
from producers.sdk import DriftlineClient
from producers.serving import ModelServer
from producers.shadow import shadow_id
from producers.simulator import Scenario, World
from retrain_worker.rollback import RollbackRunner, watcher_for
from retrain_worker.worker import RetrainWorker
from stream_processors.core import ProcessorCore
from stream_processors.runners.inprocess import ProcessorRunner

TOPICS = Topics()
SC = Scenario(n_events=10_000, covariate_shift_at=2000, concept_change_at=4000, seed=5)
N = 300


def hot_reload(bus: InMemoryBus, server: ModelServer, group: str) -> list[ModelUpdate]:
    source = bus.source([TOPICS.models], group)
    updates = [decode(ModelUpdate, r.value) for r in source.poll(1000)]
    for u in updates:
        server.apply(u)
    source.commit()
    return updates


def serve(client: DriftlineClient, server: ModelServer, concept: int, n: int, start: int) -> None:
    """``n`` requests answered by the champion, scored in shadow too, each labelled right after."""
    X, y = World(SC).sample(np.random.default_rng(start), n, concept=concept, shifted=True)
    prediction, score = server.predict(X)
    shadow = server.shadow.score(X)
    client.model_version = server.version
    for k, row in enumerate(X.to_dict("records")):
        t = float(start + k)
        p = Prediction(
            prediction_id=f"r{start + k}",
            model="churn",
            model_version=server.version,
            event_time=t,
            features=row,
            prediction=int(prediction[k]),
            score=float(score[k]),
        )
        client.emit(p)
        if shadow is not None and server.shadow.version is not None:
            client.log_shadow(p, server.shadow.version, int(shadow[0][k]), float(shadow[1][k]))
        client.log_label(p.prediction_id, int(y[k]), event_time=t + 0.5)


def live(bus: InMemoryBus, worker: RetrainWorker, server: ModelServer, concept: int) -> tuple[list[Any], int]:
    """Serve live requests in batches of 50 through the processor until the shadow is decided;
    until then the champion stays and the challenger stays in shadow."""
    client = DriftlineClient(bus.sink(), model="churn", model_version="1", topics=TOPICS)
    monitor = MonitorSettings(metrics_every=50, performance_window=300, require_announcement=False)
    processor = ProcessorRunner(
        ProcessorCore(monitor, TOPICS),
        bus.source([TOPICS.predictions, TOPICS.labels], "processor"),
        bus.sink(),
    )
    judge = RollbackRunner(watcher_for(worker), bus.source([TOPICS.metrics], "rollback"))
    decided: list[RetrainOutcome] = []
    served = 0
    while not decided and served < 2000:
        serve(client, server, concept, 50, 6000 + served)
        served += 50
        while processor.run_once():
            pass
        decided = judge.run_once()
        if not decided:
            assert worker.registry.champion("churn").version == "1" and server.shadow.version == "2"
    return decided, served


@pytest.mark.parametrize(("live_concept", "verdict"), [(1, "promoted"), (0, "rejected")])
def test_a_challenger_in_shadow_is_decided_by_n_labelled_shadow_predictions(
    registry: LocalModelRegistry,
    fill_scored: Any,
    bus: InMemoryBus,
    make_request: Any,
    live_concept: int,
    verdict: str,
) -> None:
    fill_scored(1, 1000, 200)  # after the concept change: the refit wins its holdout by far
    settings = RetrainSettings(min_samples=800, train_window=1500, shadow_labelled=N)
    worker = RetrainWorker(settings, TOPICS, registry, bus, bus.sink())
    worker.submit(make_request("a1", t=150.0))
    [entered] = worker.step()
    assert entered.status == "shadow" and entered.version == "2"
    assert entered.reason.startswith("challenger beat champion: ")
    assert registry.champion("churn").version == "1"  # not promoted yet
    assert (registry.get("churn", "2").stage, registry.alias("churn", "challenger").version) == (
        "challenger",
        "2",
    )
    server = ModelServer("churn", registry)
    [announced] = hot_reload(bus, server, "serving")
    assert (announced.kind, announced.shadow) == ("registered", True)
    assert (server.version, server.shadow.version) == ("1", "2")  # the champion answers; v2 in shadow

    decided, served = live(bus, worker, server, live_concept)
    [out] = decided
    assert N <= served <= N + 100  # decided on the first N labelled shadow predictions
    assert (out.status, out.version) == (verdict, "2")
    assert f"on {N} labelled shadow predictions" in out.reason
    # both versions were monitored on the same live events
    versions = {decode(Metric, r.value).model_version for r in bus.log(TOPICS.metrics)}
    assert versions == {"1", "2"}
    labelled = [r for r in bus.log(TOPICS.labels) if b"~shadow" in r.value]
    assert len(labelled) == served and shadow_id("r6000").encode() in labelled[0].value
    hot_reload(bus, server, "serving")
    assert server.shadow.version is None  # the shadow period is over either way
    assert registry.alias("churn", "challenger") is None
    if verdict == "promoted":
        assert out.reason.startswith("v2 won its shadow period: v2 0.")
        assert registry.champion("churn").version == "2" and server.version == "2"
    else:
        assert out.reason.startswith("v2 did not win its shadow period: v2 0.")
        assert registry.champion("churn").version == "1" and server.version == "1"
        assert (registry.get("churn", "2").stage, registry.get("churn", "2").reason) == (
            "rejected",
            out.reason,
        )
        notes = [decode_notification(r.value) for r in bus.log(TOPICS.notifications)]
        assert [(n.status, n.version) for n in notes if isinstance(n, RetrainOutcome)][-1] == (
            "rejected",
            "2",
        )
    again = RollbackRunner(watcher_for(worker), bus.source([TOPICS.metrics], "a-second-judge"))
    assert again.run_once() == []  # decided once


def test_older_model_updates_still_decode_and_new_kinds_round_trip() -> None:
    old = (
        b'{"model": "churn", "version": "2", "previous_version": "1", "artifact_uri": "file:///r/v2.joblib"}'
    )
    u = decode(ModelUpdate, old)
    assert (u.kind, u.shadow, u.previous_version) == ("promoted", False, "1")
    fields = (
        '"model": "churn", "version": "3", "kind": "registered", "previous_version": null, "artifact_uri": ""'
    )
    registered = ("{" + fields + "}").encode()
    assert decode(ModelUpdate, registered).shadow is False
    back = ModelUpdate(model="churn", version="1", kind="rollback", previous_version="2", artifact_uri="")
    assert decode(ModelUpdate, encode(back)) == back
    outcome = RetrainOutcome(request_id="rollback-churn-v2", model="churn", status="rolled_back", reason="r")
    assert decode(RetrainOutcome, encode(outcome)).status == "rolled_back"


def test_a_challenger_registered_before_a_restart_has_its_shadow_announced(
    registry: LocalModelRegistry, bus: InMemoryBus, make_request: Any
) -> None:
    champion = registry.load("churn", "1")
    registry.register("churn", champion, triggered_by="a1", promote=False, stage="challenger")  # then killed
    settings = RetrainSettings(min_samples=800, train_window=1500, shadow_labelled=N)
    worker = RetrainWorker(settings, TOPICS, registry, bus, bus.sink())
    assert worker.submit(make_request("a1", t=150.0)) is None
    [out] = worker.step()
    assert (out.status, out.version) == ("shadow", "2")
    [u] = [decode(ModelUpdate, r.value) for r in bus.log(TOPICS.models)]
    assert (u.kind, u.shadow, u.version, u.previous_version) == ("registered", True, "2", "1")
    assert registry.alias("churn", "challenger").version == "2" and registry.champion("churn").version == "1"
