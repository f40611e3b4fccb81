"""Pacing a Kafka producer on the loop's event time, so a replay at any speed gives the embedded
loop's model versions at the embedded loop's event indices.

The embedded loop steps its components in turn: after each batch of predictions (a tick of event
time) the processor, alert routing and the retrain worker have all seen everything before it, and a
model update the worker publishes then serves from the next prediction. On Kafka the components run
on their own and a fast producer is thousands of events ahead by the time a retrain is decided. The
:class:`KafkaPacer` restores the embedded order at each tick ``c``, reading only consumer-group
offsets (which Kafka keeps for anyone to read) and the clock topic:

1. the processor's group has committed every input record produced before ``c`` (its outputs commit
   with its offsets: the scored events and alerts before ``c`` are readable);
2. the control plane's group has committed every alert there is (the retrain requests are sent);
3. if a retrain request is undecided (the worker's group commits a request only once decided), or
   at the first tick, a :class:`~retrain_worker.runner.LoopTick` goes on the clock topic and the
   producer waits for the worker's group to commit it: the worker has tried its pending requests on
   the events before ``c`` and published what it decided, effective from ``c``.

Each wait is bounded by ``max_hold_s`` of wall time; past it the producer logs which component lagged
and goes on -- the run continues, but from then on a version may serve later than in process.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import msgspec
from confluent_kafka import Consumer, TopicPartition

from driftline.config import KafkaSettings, Topics
from driftline.kafka import KafkaSink, ensure_topics
from retrain_worker.runner import LoopTick

__all__ = ["KafkaPacer", "Pacing", "clock_topic"]

log = logging.getLogger(__name__)


def clock_topic(topics: Topics) -> str:
    """The loop's clock: ticks from a paced producer to the retrain worker."""
    return f"{topics.retrain}.clock"


@dataclass(frozen=True)
class Pacing:
    """Whose progress a paced producer waits for: the consumer groups of the processor, the control
    plane and the retrain worker; ``tick`` events between two ticks (the embedded loop's batch)."""

    processor: str
    control_plane: str
    worker: str
    tick: int = 500
    max_hold_s: float = 60.0


class KafkaPacer:
    """Holds a producer at each tick until the loop has caught up with it (see the module)."""

    def __init__(self, kafka: KafkaSettings, topics: Topics, pacing: Pacing) -> None:
        self.topics, self.pacing = topics, pacing
        self.clock = clock_topic(topics)
        ensure_topics(kafka, [self.clock])
        conf = kafka.client_config()
        self._groups = {
            name: Consumer({**conf, "group.id": group, "enable.auto.commit": False})
            for name, group in (
                ("processor", pacing.processor),
                ("control plane", pacing.control_plane),
                ("retrain worker", pacing.worker),
            )
        }
        self._probe = Consumer({**conf, "group.id": f"{pacing.worker}-pacer", "enable.auto.commit": False})
        self._sink = KafkaSink(kafka, block=True)
        self.ticks = 0
        self.held_s = 0.0
        self.overruns = 0  # waits that ran past max_hold_s

    def _parts(self, topic: str) -> list[TopicPartition]:
        meta = self._probe.list_topics(topic, timeout=10)
        return [TopicPartition(topic, p) for p in sorted(meta.topics[topic].partitions)]

    def _ends(self, topic: str) -> dict[int, int]:
        return {
            tp.partition: int(self._probe.get_watermark_offsets(tp, timeout=10, cached=False)[1])
            for tp in self._parts(topic)
        }

    def _committed(self, group: str, topic: str) -> dict[int, int]:
        found = self._groups[group].committed(self._parts(topic), timeout=10)
        return {tp.partition: max(tp.offset, 0) for tp in found}

    def _caught_up(self, group: str, topic: str, ends: dict[int, int]) -> bool:
        done = self._committed(group, topic)
        return all(done.get(p, 0) >= end for p, end in ends.items())

    def _wait(self, what: str, ready: Callable[[], bool]) -> None:
        started = time.monotonic()
        while not ready():
            if time.monotonic() - started > self.pacing.max_hold_s:
                self.overruns += 1
                log.warning(
                    "pacing: %s did not catch up within %.0f s; going on", what, self.pacing.max_hold_s
                )
                break
            time.sleep(0.05)
        self.held_s += time.monotonic() - started

    def barrier(self, event_time: float) -> None:
        """Everything before ``event_time`` has been produced and flushed: wait for the loop."""
        t = self.topics
        inputs = {topic: self._ends(topic) for topic in (t.predictions, t.labels)}
        for topic, ends in inputs.items():
            self._wait("the processor", functools.partial(self._caught_up, "processor", topic, ends))
        alerts = self._ends(t.alerts)
        self._wait("the control plane", lambda: self._caught_up("control plane", t.alerts, alerts))
        requests = self._ends(t.retrain)
        if self.ticks and self._caught_up("retrain worker", t.retrain, requests):
            return  # nothing pending: the worker has nothing to decide at this tick
        before = self._ends(self.clock)
        tick = LoopTick(event_time=event_time, requests_to=[(t.retrain, p, e) for p, e in requests.items()])
        self._sink.send(self.clock, b"clock", msgspec.json.encode(tick), event_time)
        if self._sink.flush(30.0):
            raise RuntimeError(f"the loop's tick at {event_time} was not delivered to {self.clock}")
        after = self._ends(self.clock)
        sent = {p: e for p, e in after.items() if e > before.get(p, 0)}
        self.ticks += 1
        self._wait("the retrain worker", lambda: self._caught_up("retrain worker", self.clock, sent))

    def close(self) -> None:
        for c in (*self._groups.values(), self._probe):
            c.close()
