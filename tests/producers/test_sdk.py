"""The SDK never raises into or waits for the caller, and every event it loses is counted, by reason,
and told to the service's ``on_drop`` callback; ``predictions + labels + dropped`` adds up to the
events logged. The Kafka sink says at once that a full queue dropped a record, and names the topic,
size and limit of a record it can never send."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from driftline.config import KafkaSettings
from driftline.contracts import Label, Prediction
from driftline.errors import DriftlineError
from driftline.kafka import KafkaSink
from driftline.transport import DeliveryFailureListener, Dropped, InMemoryBus, RecordRejected
from producers.sdk import DROP_REASONS, DriftlineClient

NO_BROKER = KafkaSettings(bootstrap_servers="127.0.0.1:9")  # nothing listens on the discard port


def no_broker_sink(conf: dict[str, Any], *, block: bool = False, block_timeout: float = 60.0) -> KafkaSink:
    """A Kafka sink whose broker is away: what it took stays queued (librdkafka's log silenced)."""
    return KafkaSink(NO_BROKER, block=block, block_timeout=block_timeout, **{**conf, "log_level": 0})


class QueueSink:
    """Takes ``capacity`` records, then reports a full queue; rejects records over ``max_bytes``;
    :meth:`fail_all` plays the delivery reports of every queued record failing."""

    def __init__(self, capacity: int = 1_000_000, max_bytes: int = 1_000_000) -> None:
        self.capacity, self.max_bytes = capacity, max_bytes
        self.queued: list[tuple[str, bytes | None, bytes]] = []
        self.listeners: list[DeliveryFailureListener] = []

    def add_failure_listener(self, listener: DeliveryFailureListener) -> None:
        self.listeners.append(listener)

    def send(self, topic: str, key: bytes | None, value: bytes, timestamp: float | None = None) -> None:
        if len(value) > self.max_bytes:
            raise RecordRejected(topic, len(value), self.max_bytes, "MSG_SIZE_TOO_LARGE")
        if len(self.queued) >= self.capacity:
            raise Dropped(topic, "queue_full")
        self.queued.append((topic, key, value))

    def fail_all(self, reason: str = "_MSG_TIMED_OUT") -> None:
        queued, self.queued = self.queued, []
        for topic, key, value in queued:
            for listener in self.listeners:
                listener(topic, key, value, reason)

    def flush(self, timeout: float = 10.0) -> int:
        return len(self.queued)


class Drops:
    """An ``on_drop`` callback that records what it is told."""

    def __init__(self) -> None:
        self.seen: list[tuple[Prediction | Label | None, str]] = []

    def __call__(self, event: Prediction | Label | None, reason: str) -> None:
        self.seen.append((event, reason))


def client_on(sink: object, on_drop: Drops | None = None, model: str = "churn") -> DriftlineClient:
    return DriftlineClient(sink, model=model, model_version="1", on_drop=on_drop)  # type: ignore[arg-type]


def reasons(client: DriftlineClient) -> dict[str, int]:
    return {r: n for r, n in client.stats["dropped_by_reason"].items() if n}


def test_a_full_queue_drops_at_once_counts_queue_full_and_tells_the_callback() -> None:
    drops = Drops()
    client = client_on(QueueSink(capacity=3), drops)
    ids = [client.log_prediction({"x": float(i)}, prediction=1, prediction_id=f"p{i}") for i in range(10)]
    assert ids == ["p0", "p1", "p2"] + [None] * 7
    assert client.stats == {
        "predictions": 3,
        "labels": 0,
        "dropped": 7,
        "dropped_by_reason": {"queue_full": 7, "encode_error": 0, "rejected": 0, "delivery_failed": 0},
    }
    assert [(e.prediction_id, r) for e, r in drops.seen if isinstance(e, Prediction)] == [
        (f"p{i}", "queue_full") for i in range(3, 10)
    ]
    client.log_label("p0", 1)
    assert reasons(client) == {"queue_full": 8}
    assert isinstance(drops.seen[-1][0], Label) and drops.seen[-1][0].prediction_id == "p0"


def test_events_that_cannot_be_built_or_encoded_are_counted_as_encode_errors() -> None:
    drops = Drops()
    bus = InMemoryBus()
    client = client_on(bus.sink(), drops)
    assert client.log_prediction({"x": object()}, prediction=1) is None  # type: ignore[dict-item]
    assert client.log_prediction(42, prediction=1) is None  # type: ignore[arg-type]  # not a mapping
    client.log_label("p0", object())  # type: ignore[arg-type]
    assert client.log_prediction({"x": 1.0}, prediction=1) is not None
    assert reasons(client) == {"encode_error": 3}
    assert client.stats["predictions"] == 1 and len(bus.log("driftline.predictions")) == 1
    assert [type(e).__name__ for e, _ in drops.seen] == ["Prediction", "NoneType", "Label"]
    assert {r for _, r in drops.seen} == {"encode_error"}


def test_a_record_the_transport_rejects_is_a_counted_drop_and_the_next_ones_go_through() -> None:
    drops = Drops()
    sink = QueueSink(max_bytes=500)
    client = client_on(sink, drops)
    assert client.log_prediction({"blob": "x" * 1000}, prediction=1) is None
    assert client.log_prediction({"x": 1.0}, prediction=1) is not None
    assert reasons(client) == {"rejected": 1}
    assert client.stats["predictions"] == 1 and len(sink.queued) == 1
    assert [r for _, r in drops.seen] == ["rejected"]


def test_failed_deliveries_move_events_from_sent_to_dropped_and_reach_the_callback() -> None:
    drops = Drops()
    sink = QueueSink()
    client = client_on(sink, drops)
    other = client_on(sink, model="fraud")  # another model on the same sink: not ours to count
    for i in range(5):
        client.log_prediction({"x": float(i)}, prediction=1, prediction_id=f"p{i}")
    client.log_label("p0", 1)
    other.log_prediction({"x": 0.0}, prediction=0)
    sink.fail_all()
    assert client.stats["predictions"] == 0 and client.stats["labels"] == 0
    assert client.stats["dropped"] == 6 and reasons(client) == {"delivery_failed": 6}
    assert other.stats["dropped"] == 1 and other.stats["predictions"] == 0
    failed = [(type(e).__name__, e.prediction_id) for e, _ in drops.seen if e is not None]
    assert failed == [("Prediction", f"p{i}") for i in range(5)] + [("Label", "p0")]


def test_a_callback_that_raises_never_breaks_the_caller_and_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(event: Prediction | Label | None, reason: str) -> None:
        raise RuntimeError("the service's own bug")

    client = DriftlineClient(QueueSink(capacity=0), model="churn", model_version="1", on_drop=broken)  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="producers.sdk"):
        results = [client.log_prediction({"x": float(i)}, prediction=1) for i in range(20)]
        client.log_label("p", 1)
    assert results == [None] * 20
    assert client.stats["dropped"] == 21 and reasons(client) == {"queue_full": 21}
    assert sum("on_drop callback raised" in r.getMessage() for r in caplog.records) == 1


def test_stats_is_a_snapshot_the_caller_cannot_change() -> None:
    client = client_on(QueueSink(capacity=1))
    client.log_prediction({"x": 1.0}, prediction=1)
    client.log_prediction({"x": 2.0}, prediction=1)
    snapshot = client.stats
    snapshot["dropped"] = 0
    snapshot["dropped_by_reason"]["queue_full"] = 0
    snapshot["dropped_by_reason"]["invented"] = 5
    assert client.stats["dropped"] == 1
    assert client.stats["dropped_by_reason"] == dict.fromkeys(DROP_REASONS, 0) | {"queue_full": 1}
    with pytest.raises(AttributeError):
        client.stats = snapshot  # type: ignore[misc]


def test_the_kafka_sink_drops_at_once_when_its_queue_is_full() -> None:
    sink = no_broker_sink({"queue.buffering.max.messages": 2})
    sink.send("t", b"k", b"one")
    sink.send("t", b"k", b"two")
    with pytest.raises(Dropped) as caught:
        sink.send("t", b"k", b"three")
    assert (caught.value.topic, caught.value.reason, sink.dropped) == ("t", "queue_full", 1)
    assert sink.flush(0) == 2  # the two it took are still queued, not reported as lost


def test_a_blocking_kafka_sink_never_drops_it_stops_with_an_error() -> None:
    sink = no_broker_sink({"queue.buffering.max.messages": 1}, block=True, block_timeout=0.2)
    sink.send("t", None, b"one")
    with pytest.raises(DriftlineError, match="stayed full") as caught:
        sink.send("t", None, b"two")
    assert not isinstance(caught.value, Dropped) and sink.dropped == 0


@pytest.mark.parametrize("block", [False, True])
def test_an_oversized_record_is_rejected_with_topic_size_and_limit_in_either_mode(block: bool) -> None:
    sink = no_broker_sink({"message.max.bytes": 2000}, block=block)
    with pytest.raises(RecordRejected) as caught:
        sink.send("driftline.scored", b"m", b"x" * 5000)
    err = caught.value
    assert (err.topic, err.size, err.limit, err.reason) == (
        "driftline.scored",
        5001,
        2000,
        "MSG_SIZE_TOO_LARGE",
    )
    assert "5,001 bytes (limit 2,000)" in str(err) and "message.max.bytes" in str(err)
    sink.send("driftline.scored", b"m", b"small")  # the sink goes on
    assert sink.dropped == 0 and sink.flush(0) == 1


def test_the_sdk_on_a_kafka_sink_with_no_broker_counts_every_call_as_sent_or_dropped() -> None:
    sink = no_broker_sink({"queue.buffering.max.messages": 100})
    client = client_on(sink)
    ids = [client.log_prediction({"x": float(i)}, prediction=0) for i in range(1000)]
    stats = client.stats
    assert stats["predictions"] == sum(pid is not None for pid in ids) == 100
    assert stats["dropped"] == reasons(client)["queue_full"] == 900 == sink.dropped
