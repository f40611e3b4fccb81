"""One alert handler: what an alert record turns into, and the in-process runner that sends it."""

from __future__ import annotations

import pytest
from events import alert

from driftline.config import RoutingSettings, Topics
from driftline.contracts import Alert, DeadLetter, Incident, RetrainRequest, alerts_in, decode, encode
from driftline.transport import InMemoryBus, Record
from stream_processors.control.handler import STAGE, AlertHandler, Output
from stream_processors.control.inprocess import AlertRoutingRunner
from stream_processors.control.routing import AlertRouter
from stream_processors.control.sinks import LogSink

TOPICS = Topics()


class Loop:
    """The in-process control plane on an in-memory bus, with a log sink to see deliveries."""

    def __init__(self, cooldown_s: float = 60.0) -> None:
        self.bus = InMemoryBus()
        self.producer = self.bus.sink()
        self.delivered = LogSink()
        self.runner = AlertRoutingRunner(
            AlertHandler(AlertRouter(RoutingSettings(cooldown_s=cooldown_s)), TOPICS),
            self.bus.source([TOPICS.alerts], "routing"),
            self.bus.sink(),
            [self.delivered],
        )

    def send(self, *values: bytes) -> None:
        for value in values:
            self.producer.send(TOPICS.alerts, b"churn", value, 1.0)
        self.runner.run_once()

    def read(self, topic: str) -> list[Record]:
        return self.bus.log(topic)

    def alerts(self) -> list[Alert]:
        """The alerts among the notifications (each also opens or updates an incident)."""
        return alerts_in(r.value for r in self.read(TOPICS.notifications))

    def sunk(self) -> list[str]:
        """Ids of the alerts the sinks got."""
        return [n.alert_id for n in self.delivered.delivered if isinstance(n, Alert)]


def test_an_invalid_alert_is_dead_lettered_with_reason_origin_and_original_bytes() -> None:
    loop = Loop()
    loop.send(encode(alert("a0")), b'{"alert_id": "x"}', b"not json")
    dead = [decode(DeadLetter, r.value) for r in loop.read(TOPICS.dlq)]
    assert [(d.original, d.offset, d.topic, d.stage) for d in dead] == [
        (b'{"alert_id": "x"}', 1, TOPICS.alerts, STAGE),
        (b"not json", 2, TOPICS.alerts, STAGE),
    ]
    assert all(d.reason.startswith("Alert: ") and d.error_type == "InvalidEvent" for d in dead)
    assert {r.key for r in loop.read(TOPICS.dlq)} == {b"churn"}  # the original key
    assert loop.sunk() == ["a0"]  # the batch went on
    assert loop.bus.source([TOPICS.alerts], "routing").poll(10) == []  # committed past the bad records


@pytest.mark.parametrize(
    ("kind", "feature", "retrains"),
    [("concept_drift", None, True), ("performance", None, True), ("data_drift", "income", False)],
)
def test_a_valid_alert_is_notified_and_an_error_alert_also_requests_a_retrain(
    kind: str, feature: str | None, retrains: bool
) -> None:
    loop = Loop()
    loop.send(encode(alert("a1", t=100.0, kind=kind, feature=feature)))
    note, opened = loop.read(TOPICS.notifications)
    assert decode(Alert, note.value) == alert("a1", t=100.0, kind=kind, feature=feature)
    assert (note.key, note.timestamp) == (b"churn", 100.0)
    incident = decode(Incident, opened.value)
    assert (incident.status, incident.alert_ids, incident.revision) == ("firing", ["a1"], 1)
    requests = [decode(RetrainRequest, r.value) for r in loop.read(TOPICS.retrain)]
    assert [(r.request_id, r.model, r.model_version) for r in requests] == (
        [("a1", "churn", "1")] if retrains else []
    )
    assert loop.sunk() == ["a1"]
    assert loop.read(TOPICS.dlq) == []


def test_a_duplicate_alert_is_routed_once_and_a_cooled_down_one_not_at_all() -> None:
    loop = Loop(cooldown_s=60.0)
    first = encode(alert("a1", t=100.0))
    loop.send(first, first)  # in one batch
    loop.send(first)  # replayed later
    loop.send(encode(alert("a2", t=130.0)))  # same model, version and type within the cooldown
    assert [a.alert_id for a in loop.alerts()] == ["a1"]
    assert [decode(RetrainRequest, r.value).request_id for r in loop.read(TOPICS.retrain)] == ["a1"]
    assert loop.sunk() == ["a1"]


def test_the_handler_returns_messages_and_does_no_io() -> None:
    handler = AlertHandler(AlertRouter(RoutingSettings()), TOPICS)
    value = encode(alert("a1", t=5.0))
    handled = handler.handle(Record(TOPICS.alerts, value, key=b"k", partition=2, offset=9))
    assert handled.delivered is not None and handled.dead_letter is None
    assert handled.outputs[0] == Output(TOPICS.notifications, b"churn", value, 5.0)
    assert [o.topic for o in handled.outputs] == [TOPICS.notifications, TOPICS.retrain, TOPICS.notifications]
    again = handler.handle(Record(TOPICS.alerts, value))
    assert again.outputs == [] and again.delivered is None
    assert again.routed is not None and again.routed.reason == "duplicate alert id"
    bad = handler.handle(Record(TOPICS.alerts, b"{}", key=b"k", partition=2, offset=10))
    assert bad.routed is None and bad.dead_letter is not None
    assert (bad.dead_letter.partition, bad.dead_letter.offset, bad.dead_letter.original) == (2, 10, b"{}")
    assert bad.outputs == [Output(TOPICS.dlq, b"k", encode(bad.dead_letter), None)]
