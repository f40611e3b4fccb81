"""An at-least-once processor (``state.exactly_once=false``) rides out a broker outage, on fakes: outputs
a flush leaves queued, offset commits refused by an absent coordinator, a producer queue that stays
full, a models topic that cannot be read -- the runner never stops, never commits an offset before the
outputs of the records below it are delivered, polls nothing new while it waits, and in the end has sent
exactly the outputs of an uninterrupted run (nothing replayed, nothing lost). Outputs that failed for
good (an outage longer than delivery.timeout.ms) still stop it: only a replay brings them back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fake_group import FakeConsumer, partitioned

from driftline.config import MonitorSettings, Topics
from driftline.kafka import QueueFull
from driftline.kafka_retry import RetriesExhausted
from driftline.transport import Record
from stream_processors.core.processor import ProcessorCore
from stream_processors.runners.exceptions import DeliveryError
from stream_processors.runners.kafka import KafkaRunner
from stream_processors.runners.outage import Outage

TOPICS = Topics()
SETTINGS = MonitorSettings(reference_size=1000, window_size=250, metrics_every=250)


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


class Sink:
    """Keeps what is sent. While :attr:`away` > 0 each flush leaves 3 outputs queued (and counts one
    down); :attr:`full` sends first raise :class:`QueueFull` (nothing sent)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes | None, bytes, float | None]] = []
        self.away = self.full = 0
        self.failed = 0
        self.flushes: list[int] = []  # outputs sent at each flush that found everything delivered

    def send(self, topic: str, key: bytes | None, value: bytes, timestamp: float | None = None) -> None:
        if self.full:
            self.full -= 1
            raise QueueFull(f"producer queue to {topic} stayed full for 60 s: is the broker reachable?")
        self.sent.append((topic, key, value, timestamp))

    def flush(self, timeout: float = 10.0) -> int:
        if self.away:
            self.away -= 1
            return 3
        self.flushes.append(len(self.sent))
        return 0


class Table:
    """The models topic (no announcements); unreadable for its first ``down`` reads."""

    def __init__(self, down: int = 0) -> None:
        self.down = down

    def catch_up(self) -> list[Record]:
        if self.down:
            self.down -= 1
            raise RetriesExhausted("could not read topic 'driftline.models' within 30 s")
        return []

    def close(self) -> None:
        pass


@pytest.fixture
def logs(drifting_stream) -> dict[int, list[Record]]:
    a, _ = drifting_stream(n=1500, at=900, shift=1.5, seed=0, model="a")
    b, _ = drifting_stream(n=1500, at=700, shift=1.5, seed=1, model="b")
    return partitioned(a, b)


def start(logs, table: Table | None = None, **consumer: Any) -> tuple[KafkaRunner, FakeConsumer, Sink, Clock]:
    sink, clock, member = Sink(), Clock(), FakeConsumer(logs, **consumer)
    runner = KafkaRunner(
        ProcessorCore(SETTINGS, TOPICS), member, sink, batch_size=200, commit_interval=2.0,
        idle_drain_s=None, clock=clock, announcements=table,
    )  # fmt: skip
    runner.outage = Outage(clock=clock, sleep=lambda s: None, initial=0.5, maximum=4.0)
    member.assign([0, 1])
    return runner, member, sink, clock


def run(runner: KafkaRunner, clock: Clock, during: Callable[[int], None] = lambda i: None) -> None:
    member: FakeConsumer = runner.consumer  # type: ignore[assignment]
    for i in range(10_000):
        during(i)
        clock.now += 0.5
        if not runner.run_once() and member.done() and not runner.outage.active:
            break
    runner.close()


@pytest.fixture
def reference(logs) -> list[tuple[str, bytes | None, bytes, float | None]]:
    runner, _, sink, clock = start(logs)
    run(runner, clock)
    assert sum(t == TOPICS.alerts for t, *_ in sink.sent) >= 2  # both drifts are found
    return sink.sent


def test_queued_outputs_hold_the_offsets_and_the_polls_until_the_broker_is_back(logs, reference) -> None:
    runner, member, sink, clock = start(logs)
    seen: dict[str, Any] = {}

    def outage(i: int) -> None:
        if i == 6:
            sink.away = 5  # the next five flushes find outputs still queued
        if runner.outage.active:  # since the first of them
            seen.setdefault("position", dict(member.position))
            seen.setdefault("commits", len(member.commits))
            assert member.position == seen["position"], "polled new records while outputs were queued"
            assert len(member.commits) == seen["commits"], "committed offsets before outputs were delivered"

    run(runner, clock, outage)
    assert not runner.failed and runner.outage.attempts == 0 and "position" in seen
    assert sink.sent == reference  # nothing replayed, nothing lost, in the same order
    assert member.committed == {(t, p): sum(r.topic == t for r in logs[p]) for p in (0, 1) for t in (
        TOPICS.predictions, TOPICS.labels)}  # fmt: skip


def test_a_commit_refused_while_the_coordinator_is_away_is_tried_again(logs, reference) -> None:
    runner, member, sink, clock = start(logs, unreachable=4)
    run(runner, clock)
    assert not runner.failed and member.commits and sink.sent == reference
    assert member.committed[(TOPICS.labels, 1)] == sum(r.topic == TOPICS.labels for r in logs[1])


def test_a_queue_that_stays_full_is_waited_out_output_by_output(logs, reference) -> None:
    runner, _, sink, clock = start(logs)
    run(runner, clock, lambda i: setattr(sink, "full", 3) if i == 4 else None)
    assert not runner.failed and sink.sent == reference


def test_a_batch_polled_while_the_models_topic_is_unreadable_is_held_not_lost(logs, reference) -> None:
    runner, _, sink, clock = start(logs, Table(down=3))
    run(runner, clock)
    assert not runner.failed and sink.sent == reference


def test_failed_deliveries_still_stop_the_runner(logs) -> None:
    runner, member, sink, clock = start(logs)
    runner.run_once()
    sink.failed = 1  # delivery.timeout.ms passed: those outputs are gone
    with pytest.raises(DeliveryError):
        runner.checkpoint()
    assert runner.failed and member.commits == []
