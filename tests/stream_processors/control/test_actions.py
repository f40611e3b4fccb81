"""On-call's acks and silences: they mute the sinks, never the notifications topic, and survive a
restart (they live in the routing state)."""

from __future__ import annotations

import pytest
from events import alert

from driftline.config import RoutingSettings, Topics
from driftline.contracts import AlertAction, Incident, Metric, Window, decode_notification, encode
from driftline.errors import ConfigError
from driftline.transport import InMemoryBus
from stream_processors.control.actions import parse_duration, parse_matcher
from stream_processors.control.handler import AlertHandler
from stream_processors.control.inprocess import AlertRoutingRunner
from stream_processors.control.routing import AlertRouter
from stream_processors.control.sinks import LogSink
from stream_processors.control.store import AlertStore

TOPICS = Topics()
NOW = 1_000_000.0


class Loop:
    def __init__(self, store: AlertStore | None = None) -> None:
        self.bus = InMemoryBus()
        self.producer = self.bus.sink()
        self.sink = LogSink()
        handler = AlertHandler(AlertRouter(RoutingSettings(cooldown_s=0)), TOPICS, clock=lambda: NOW)
        self.runner = AlertRoutingRunner(
            handler, self.bus.source(handler.inputs, "routing"), self.bus.sink(), [self.sink], store
        )

    def send(self, topic: str, value: bytes) -> None:
        self.producer.send(topic, b"churn", value, None)
        self.runner.run_once()

    def sunk(self) -> list[tuple[str, str, int]]:
        return [(n.kind, n.status, n.revision) for n in self.sink.delivered if isinstance(n, Incident)]

    def on_topic(self) -> list[tuple[str, str, int]]:
        notes = [decode_notification(r.value) for r in self.bus.log(TOPICS.notifications)]
        return [(n.kind, n.status, n.revision) for n in notes if isinstance(n, Incident)]


def healthy(k: int) -> bytes:
    w = Window(
        start_index=k + 10, end_index=k + 11, start_time=float(k), end_time=float(k), n=1
    )  # after the alerts
    return encode(Metric(model="churn", model_version="2", name="accuracy", value=0.95, window=w))


def test_a_silence_mutes_matching_incidents_for_the_sinks_only_until_it_expires() -> None:
    loop = Loop()
    silence = AlertAction(
        action_id="s1", action="silence", target="model=churn,kind=data_drift", until=NOW + 1
    )
    loop.send(TOPICS.alert_actions, encode(silence))
    loop.send(TOPICS.alerts, encode(alert("d1", kind="data_drift", feature="income")))
    loop.send(TOPICS.alerts, encode(alert("c1", kind="concept_drift")))
    assert loop.sunk() == [("performance", "firing", 1)]  # the data-drift incident is silenced
    # all kept on the topic; labels confirming harm made the data-drift incident critical (rev 2)
    assert loop.on_topic() == [
        ("data_drift", "firing", 1),
        ("performance", "firing", 1),
        ("data_drift", "firing", 2),
    ]
    assert [a.alert_id for a in loop.sink.delivered if not isinstance(a, Incident)] == ["c1"]


def test_an_acked_incident_stops_paging_but_its_resolution_still_arrives() -> None:
    loop = Loop()
    loop.send(TOPICS.alerts, encode(alert("d1", kind="data_drift", feature="income")))
    (opened,) = [n for n in loop.sink.delivered if isinstance(n, Incident)]
    loop.send(
        TOPICS.alert_actions, encode(AlertAction(action_id="a1", action="ack", target=opened.incident_id))
    )
    loop.send(TOPICS.alerts, encode(alert("d2", kind="data_drift", feature="region")))  # an update: muted
    for k in range(3):
        loop.send(TOPICS.metrics, healthy(k))
    assert loop.sunk() == [("data_drift", "firing", 1), ("data_drift", "resolved", 3)]
    assert loop.on_topic() == [
        ("data_drift", "firing", 1),
        ("data_drift", "firing", 2),
        ("data_drift", "resolved", 3),
    ]


def test_the_embedded_store_takes_actions_and_keeps_every_notification(tmp_path) -> None:
    store = AlertStore(str(tmp_path))
    loop = Loop(store)
    store.add_action(AlertAction(action_id="s1", action="silence", target="feature=income", until=NOW + 60))
    loop.send(TOPICS.alerts, encode(alert("d1", kind="data_drift", feature="income")))
    assert loop.sunk() == []
    assert [type(decode_notification(v)).__name__ for v in store.notifications()] == ["Alert", "Incident"]


def test_a_bad_action_is_dead_lettered() -> None:
    loop = Loop()
    loop.send(TOPICS.alert_actions, encode(AlertAction(action_id="x", action="silence", target="nope")))
    assert len(loop.bus.log(TOPICS.dlq)) == 1


@pytest.mark.parametrize("text", ["", "0m", "soon", "-5s"])
def test_bad_durations_say_how_to_write_one(text: str) -> None:
    with pytest.raises(ConfigError, match="e.g. 2h"):
        parse_duration(text)


@pytest.mark.parametrize("text", ["", "model", "team=ml", "model="])
def test_bad_matchers_name_the_keys(text: str) -> None:
    with pytest.raises(ConfigError, match="model"):
        parse_matcher(text)
