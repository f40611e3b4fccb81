"""Pacing a Kafka producer on the loop's event time, so a replay at any speed gives the embedded
loop's model versions at the embedded loop's event indices.

The embedded loop steps its components in turn: after each batch of predictions (a tick of event
time) the processor, alert routing and the retrain worker have all seen everything before it, and a
model update the worker publishes then serves from the next prediction. On Kafka the components run
on their own and a fast producer is thousands of events ahead by the time a retrain is decided. The
:class:`KafkaPacer` restores the embedded order at each tick ``c`` -- holding only where a version
can depend on it, reading consumer-group offsets (one admin request per group and look) and two
topics:

1. the processor's group has committed every input record produced before ``c`` (its outputs commit
   with its offsets: the scored events and alerts before ``c`` are readable);
2. if the processor emitted an alert of a retraining type (``routing.retrain_on``) since the last
   look, the control plane's group has committed it (its retrain request is sent); other alerts
   change no version and are routed while the producer goes on;
3. if a retrain request is undecided (the worker's group commits a request only once decided), or
   at the first tick, a :class:`~retrain_worker.runner.LoopTick` goes on the clock topic and the
   producer waits for the worker's group to commit it: the worker has tried its pending requests on
   the events before ``c`` and published what it decided, effective from ``c``.

Each wait is bounded by ``max_hold_s`` of wall time; past it the producer logs which component lagged
and goes on -- the run continues, but from then on a version may serve later than in process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import msgspec
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    ConsumerGroupTopicPartitions,
    KafkaError,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from driftline.config import KafkaSettings, Topics
from driftline.kafka import KafkaSink
from driftline.kafka_admin import ensure_topics
from retrain_worker.runner import LoopTick

__all__ = ["Ends", "KafkaPacer", "Pacing", "RetrainAlerts", "clock_topic"]

log = logging.getLogger(__name__)
Ends = dict[tuple[str, int], int]  # (topic, partition) -> offset


def clock_topic(topics: Topics) -> str:
    """The loop's clock: ticks from a paced producer to the retrain worker."""
    return f"{topics.retrain}.clock"


@dataclass(frozen=True)
class Pacing:
    """Whose progress a paced producer waits for: the consumer groups of the processor, the control
    plane and the retrain worker; ``tick`` events between two ticks (the embedded loop's batch);
    ``retrain_on``: the alert types the control plane turns into retrain requests."""

    processor: str
    control_plane: str
    worker: str
    tick: int = 500
    max_hold_s: float = 60.0
    retrain_on: tuple[str, ...] = ("concept_drift", "performance")


class _AlertType(msgspec.Struct):
    type: str = ""


class RetrainAlerts:
    """Where the alerts topic's retraining alerts lie, as a reader meets its records and ends, so a
    pacer asks the control plane's group for those offsets only -- not for the topic's end, which
    a transaction marker after the last alert keeps one past any offset a consumer commits.

    >>> seen = RetrainAlerts(("concept_drift", "performance"))
    >>> seen.record(("alerts", 0), 4, b'{"type": "data_drift"}')
    >>> seen.record(("alerts", 0), 7, b'{"type": "concept_drift"}')
    >>> seen.read_to({("alerts", 0): 9}), seen.end(("alerts", 0), 9), seen.read_to({("alerts", 0): 9})
    (False, None, True)
    >>> seen.to_route  # routed once the control plane's group has committed past offset 7
    {('alerts', 0): 8}
    """

    def __init__(self, retrain_on: tuple[str, ...]) -> None:
        self.retrain_on = retrain_on
        self.read: Ends = {}  # partition -> offset read up to (records, and ends met)
        self.to_route: Ends = {}  # partition -> offset after its last retraining alert not yet routed

    def record(self, tp: tuple[str, int], offset: int, value: bytes | None) -> None:
        self.read[tp] = max(self.read.get(tp, 0), offset + 1)
        try:
            kind = msgspec.json.decode(value or b"{}", type=_AlertType).type
        except msgspec.DecodeError:
            return  # not an alert: the control plane dead-letters it, no request follows
        if kind in self.retrain_on:
            self.to_route[tp] = offset + 1

    def end(self, tp: tuple[str, int], offset: int) -> None:
        """The reader met the partition's end at ``offset``."""
        self.read[tp] = max(self.read.get(tp, 0), offset)

    def read_to(self, ends: Ends) -> bool:
        return all(self.read.get(tp, 0) >= end for tp, end in ends.items())


class KafkaPacer:
    """Holds a producer at each tick until the loop has caught up with it (see the module).

    :attr:`held_by` sums the wall time held per component, :attr:`overruns` counts the waits that
    reached ``max_hold_s``."""

    def __init__(self, kafka: KafkaSettings, topics: Topics, pacing: Pacing, poll_s: float = 0.01) -> None:
        self.topics, self.pacing, self.poll_s = topics, pacing, poll_s
        self.clock = clock_topic(topics)
        ensure_topics(kafka, [self.clock])
        conf = kafka.client_config()
        self._admin = AdminClient(conf)
        committed_only = {**conf, "enable.auto.commit": False, "isolation.level": "read_committed"}
        self._probe = Consumer({**committed_only, "group.id": f"{pacing.worker}-pacer"})
        self._partitions: dict[str, list[tuple[str, int]]] = {}
        # the alerts, read as the control plane reads them, to know which ones must be routed first
        self._alerts = Consumer(
            {**committed_only, "group.id": f"{pacing.control_plane}-pacer", "enable.partition.eof": True}
        )
        self._alerts.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in self._parts(topics.alerts)])
        self.alerts = RetrainAlerts(pacing.retrain_on)
        self._sink = KafkaSink(kafka, block=True)
        self.ticks = 0
        self.held_s = 0.0
        self.overruns = 0  # waits that ran past max_hold_s
        self.held_by: dict[str, float] = {}  # component -> wall seconds held waiting for it

    def _parts(self, topic: str) -> list[tuple[str, int]]:
        if topic not in self._partitions:  # asked once: a run's topics keep their partitions
            meta = self._probe.list_topics(topic, timeout=10)
            self._partitions[topic] = [(topic, p) for p in sorted(meta.topics[topic].partitions)]
        return self._partitions[topic]

    def ends(self, *topics: str) -> Ends:
        """The end offsets of ``topics`` now (``read_committed``: their last stable offsets)."""
        return {
            tp: int(self._probe.get_watermark_offsets(TopicPartition(*tp), timeout=10, cached=False)[1])
            for topic in topics
            for tp in self._parts(topic)
        }

    def _committed(self, group: str, keys: list[tuple[str, int]]) -> Ends:
        request = [ConsumerGroupTopicPartitions(group, [TopicPartition(t, p) for t, p in keys])]
        found = self._admin.list_consumer_group_offsets(request, request_timeout=10)[group].result()
        return {(tp.topic, tp.partition): max(tp.offset, 0) for tp in found.topic_partitions}

    def _caught_up(self, group: str, ends: Ends) -> bool:
        done = self._committed(group, list(ends))
        return all(done.get(tp, 0) >= end for tp, end in ends.items())

    def _wait(self, what: str, ready: Callable[[], bool]) -> None:
        started = time.monotonic()
        while not ready():
            if time.monotonic() - started > self.pacing.max_hold_s:
                self.overruns += 1
                log.warning(
                    "pacing: %s did not catch up within %.0f s; going on", what, self.pacing.max_hold_s
                )
                break
            time.sleep(self.poll_s)
        held = time.monotonic() - started
        self.held_s += held
        self.held_by[what] = self.held_by.get(what, 0.0) + held
        log.debug("pacing: held %.3f s for %s", held, what)

    def _read_alerts(self, ends: Ends) -> bool:
        """Read the alerts topic on towards ``ends``; True once every partition is read to its end."""
        for m in self._alerts.consume(1000, timeout=self.poll_s):
            tp, offset, err = (str(m.topic()), int(m.partition() or 0)), int(m.offset() or 0), m.error()
            if err is None:
                self.alerts.record(tp, offset, m.value())
            elif err.code() == KafkaError._PARTITION_EOF:  # its offset: the partition's end
                self.alerts.end(tp, offset)
            else:
                log.warning("pacing: reading %s: %s", tp[0], err)
        return self.alerts.read_to(ends)

    def _routed(self) -> bool:
        if self._caught_up(self.pacing.control_plane, self.alerts.to_route):
            self.alerts.to_route.clear()
            return True
        return False

    def barrier(self, event_time: float) -> bool:
        """Everything before ``event_time`` has been produced and flushed: wait for the loop. True if
        the retrain worker was asked to decide at this tick (serving reads the models topic then)."""
        t = self.topics
        inputs = self.ends(t.predictions, t.labels)
        self._wait("the processor", lambda: self._caught_up(self.pacing.processor, inputs))
        alerts = self.ends(t.alerts)  # the processor's alerts before the tick are committed now
        self._wait("the alerts topic", lambda: self._read_alerts(alerts))
        if self.alerts.to_route:
            self._wait("the control plane", self._routed)
        requests = self.ends(t.retrain)
        if self.ticks and self._caught_up(self.pacing.worker, requests):
            return False  # nothing pending: the worker has nothing to decide at this tick
        before = self.ends(self.clock)
        tick = LoopTick(event_time=event_time, requests_to=[(tp[0], tp[1], e) for tp, e in requests.items()])
        self._sink.send(self.clock, b"clock", msgspec.json.encode(tick), event_time)
        if self._sink.flush(30.0):
            raise RuntimeError(f"the loop's tick at {event_time} was not delivered to {self.clock}")
        sent = {tp: e for tp, e in self.ends(self.clock).items() if e > before.get(tp, 0)}
        self.ticks += 1
        self._wait("the retrain worker", lambda: self._caught_up(self.pacing.worker, sent))
        return True

    def close(self) -> None:
        """Close the pacer's clients, logging how long it held the producer and for whom."""
        held = ", ".join(f"{what} {s:.1f} s" for what, s in self.held_by.items())
        log.info(
            "pacing: held %.1f s in all (%s); %d tick(s) to the retrain worker; %d wait(s) past %.0f s",
            self.held_s,
            held,
            self.ticks,
            self.overruns,
            self.pacing.max_hold_s,
        )
        for c in (self._probe, self._alerts):
            c.close()
