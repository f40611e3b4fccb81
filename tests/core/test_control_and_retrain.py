"""Alert routing and the retrain worker: dedup, cooldown, at most one retrain per alert, validation."""

from __future__ import annotations

import numpy as np
import pytest

from driftline.config import RetrainSettings, RoutingSettings, Topics
from driftline.contracts import Alert, ModelUpdate, RetrainRequest, Scored, Window, decode, encode
from driftline.registry import LocalModelRegistry
from driftline.transport import InMemoryBus
from producers.simulator import Scenario, World, make_model
from retrain_worker.worker import RetrainWorker
from stream_processors.routing import AlertRouter

TOPICS = Topics()
SC = Scenario(n_events=10_000, covariate_shift_at=2000, concept_change_at=4000, seed=5)


def alert(
    i: str = "a1",
    *,
    t: float = 100.0,
    kind: str = "concept_drift",
    version: str = "1",
    feature: str | None = None,
) -> Alert:
    w = Window(start_index=0, end_index=10, start_time=t - 10, end_time=t, n=10)
    return Alert(
        alert_id=i,
        type=kind,
        model="churn",
        model_version=version,
        feature=feature,  # type: ignore[arg-type]
        statistic="s",
        value=1.0,
        threshold=0.5,
        window=w,
        detected_at_index=10,
        detected_at_time=t,
    )


def test_router_dedups_cools_down_and_triggers_retrain_only_for_error_alerts() -> None:
    r = AlertRouter(RoutingSettings(cooldown_s=60))
    first = r.route(alert("a1", t=100))
    assert first.deliver and first.retrain is not None and first.retrain.request_id == "a1"
    assert r.route(alert("a1", t=100)).reason == "duplicate alert id"
    assert r.route(alert("a2", t=130)).reason.startswith("cooldown")
    assert r.route(alert("a3", t=170)).deliver  # cooldown over
    drift = r.route(alert("d1", t=100, kind="data_drift", feature="income"))
    assert drift.deliver and drift.retrain is None  # data drift goes to on-call, not to retraining
    assert r.route(alert("d2", t=101, kind="data_drift", feature="region")).deliver  # another feature


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


def test_webhook_sink_posts_alert_json_and_never_raises() -> None:
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from stream_processors.routing import WebhookSink

    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.handle_request, daemon=True).start()
    try:
        sink = WebhookSink(f"http://127.0.0.1:{server.server_port}/hook")
        sink.deliver(alert("w1", kind="data_drift", feature="income"))
    finally:
        server.server_close()
    assert received and received[0]["alert"]["alert_id"] == "w1"
    assert received[0]["alert"]["feature"] == "income" and "text" in received[0]
    down = WebhookSink(f"http://127.0.0.1:{server.server_port}/hook", timeout=0.5)  # nobody listens now
    down.deliver(alert("w2"))
    assert down.failures == 1
