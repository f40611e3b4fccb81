"""Kafka transport over confluent-kafka: the same Sink/Source/WindowReader the in-memory bus has.

* :class:`KafkaSink` -- idempotent producer, asynchronous delivery callbacks, never blocks
  the caller for long: when librdkafka's queue is full it serves callbacks and retries briefly,
  then counts the record as dropped.
* :class:`KafkaSource` -- a consumer-group member reading batches with ``consume(num_messages)``;
  offsets are committed explicitly after outputs are flushed (at-least-once).
* :class:`KafkaWindowReader` -- reads a topic from a timestamp (``offsets_for_times``) to its
  current end: the retrain worker gathers its data window straight from the log.
* :func:`ensure_topics` -- creates Driftline's topics with the partition count you mean.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from driftline.config import KafkaSettings
from driftline.errors import ConfigError, DriftlineError
from driftline.transport import Record

__all__ = [
    "KafkaSink",
    "KafkaSource",
    "KafkaWindowReader",
    "RebalanceListener",
    "ensure_topics",
    "wait_for_broker",
]

log = logging.getLogger(__name__)

# librdkafka's default fetch.queue.backoff.ms (1000) stalls a consumer slower than its fetcher
# for ~0.9 s each time the prefetch queue fills; 50 ms removes the stalls.
_CONSUMER_DEFAULTS = {
    "fetch.queue.backoff.ms": 50,
    "enable.auto.commit": False,
    "auto.offset.reset": "earliest",
}


class KafkaSink:
    """Idempotent producer. ``block=False`` (the SDK's request path): when librdkafka's queue stays
    full for ~0.3 s the record is dropped and counted, never raising or stalling the caller.
    ``block=True`` (processors, workers): wait for room instead -- an output is never dropped; after
    ``block_timeout`` s a :class:`DriftlineError` stops the component, which then resumes from its
    last committed offsets."""

    def __init__(
        self, settings: KafkaSettings, *, block: bool = False, block_timeout: float = 60.0, **overrides: Any
    ) -> None:
        conf = {
            **settings.client_config(),
            "enable.idempotence": True,
            "linger.ms": 5,
            "compression.type": "lz4",
            **overrides,
        }
        self._p = Producer(conf)
        self.block, self.block_timeout = block, block_timeout
        self.delivered = 0
        self.failed = 0
        self.dropped = 0
        self._sends = 0

    def _on_delivery(self, err: KafkaError | None, msg: Any) -> None:
        if err is None:
            self.delivered += 1
        else:
            self.failed += 1
            log.error("delivery to %s failed: %s", msg.topic(), err)

    def send(self, topic: str, key: bytes | None, value: bytes, timestamp: float | None = None) -> None:
        ts = int(timestamp * 1000) if timestamp is not None else 0
        self._sends += 1
        if self._sends % 1000 == 0:
            self._p.poll(0)  # serve delivery reports now and then: they hold queue space
        try:
            self._p.produce(topic, value, key, on_delivery=self._on_delivery, timestamp=ts)
            return
        except BufferError:
            pass
        deadline = time.monotonic() + (self.block_timeout if self.block else 0.3)
        while time.monotonic() < deadline:  # queue full: serve delivery reports to free space
            self._p.poll(0.05)
            try:
                self._p.produce(topic, value, key, on_delivery=self._on_delivery, timestamp=ts)
                return
            except BufferError:
                continue
        if self.block:
            raise DriftlineError(
                f"producer queue to {topic} stayed full for {self.block_timeout:.0f} s: "
                "is the broker reachable?"
            )
        self.dropped += 1
        log.error("producer queue full: dropped a record for %s", topic)

    def flush(self, timeout: float = 10.0) -> int:
        return int(self._p.flush(timeout))


class RebalanceListener(Protocol):
    """Told which input partitions (numbers, across the subscribed topics) a consumer gains or loses."""

    def on_assign(self, partitions: list[int]) -> Mapping[tuple[str, int], int]:
        """Partitions were assigned; returns start offsets per (topic, partition) that override the
        committed ones (a checkpoint's), possibly none."""
        ...

    def on_revoke(self, partitions: list[int]) -> None:
        """Partitions are about to be taken away: the last moment to commit their offsets."""
        ...

    def on_lost(self, partitions: list[int]) -> None:
        """Partitions were lost (session timeout): they may already be someone else's; do not commit."""
        ...


class KafkaSource:
    """A consumer-group member. Rebalance events go to a :class:`RebalanceListener` (given here or
    later with :meth:`listen`, before the first :meth:`poll`: they only happen inside it)."""

    def __init__(
        self,
        settings: KafkaSettings,
        topics: Sequence[str],
        group: str,
        *,
        listener: RebalanceListener | None = None,
        **overrides: Any,
    ) -> None:
        conf = {**settings.client_config(), **_CONSUMER_DEFAULTS, "group.id": group, **overrides}
        self._c = Consumer(conf)
        self._listener = listener
        self._c.subscribe(list(topics), on_assign=self._assigned, on_revoke=self._revoked, on_lost=self._lost)
        self.errors = 0

    def listen(self, listener: RebalanceListener) -> None:
        self._listener = listener

    def _assigned(self, consumer: Any, parts: list[TopicPartition]) -> None:
        if self._listener is None:
            return
        start = self._listener.on_assign(_partitions(parts))
        for tp in parts:
            if (tp.topic, tp.partition) in start:
                tp.offset = start[(tp.topic, tp.partition)]
        consumer.assign(parts)

    def _revoked(self, consumer: Any, parts: list[TopicPartition]) -> None:
        if self._listener is not None:
            self._listener.on_revoke(_partitions(parts))

    def _lost(self, consumer: Any, parts: list[TopicPartition]) -> None:
        if self._listener is not None:
            self._listener.on_lost(_partitions(parts))

    def poll(self, max_records: int, timeout: float = 0.0) -> list[Record]:
        msgs = self._c.consume(num_messages=max_records, timeout=timeout)
        out: list[Record] = []
        for m in msgs:
            err = m.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    self.errors += 1
                    log.error("consumer error: %s", err)
                continue
            ts_type, ts = m.timestamp()
            out.append(
                Record(
                    topic=m.topic() or "",
                    value=m.value() or b"",
                    key=m.key(),
                    partition=m.partition() or 0,
                    offset=_offset(m),
                    timestamp=ts / 1000.0 if ts_type else 0.0,
                )
            )
        return out

    def commit(self, offsets: Mapping[tuple[str, int], int] | None = None) -> None:
        """Commit ``offsets`` (next offset to read per (topic, partition)), synchronously; without
        them, the positions this consumer has read up to."""
        try:
            if offsets is None:
                self._c.commit(asynchronous=False)
            elif offsets:
                parts = [TopicPartition(t, p, off) for (t, p), off in offsets.items()]
                self._c.commit(offsets=parts, asynchronous=False)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError._NO_OFFSET:
                raise

    def close(self) -> None:
        """Leave the group (the listener is told of the revocation), then drop the listener."""
        try:
            self._c.close()
        finally:
            self._listener = None


class KafkaWindowReader:
    """Reads ``topic`` from the first record at or after ``since`` to the end, all partitions."""

    def __init__(self, settings: KafkaSettings) -> None:
        self.settings = settings

    def read_since(self, topic: str, since: float, limit: int) -> list[Record]:
        c = Consumer(
            {
                **self.settings.client_config(),
                **_CONSUMER_DEFAULTS,
                "group.id": f"driftline-reader-{uuid.uuid4().hex[:8]}",
            }
        )
        try:
            meta = c.list_topics(topic, timeout=10)
            parts = sorted(meta.topics[topic].partitions)
            wanted = c.offsets_for_times(
                [TopicPartition(topic, p, int(since * 1000)) for p in parts], timeout=10
            )
            ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
            assign = [tp for tp in wanted if tp.offset >= 0 and tp.offset < ends[tp.partition]]
            if not assign:
                return []
            c.assign(assign)
            remaining = {tp.partition for tp in assign}
            out: list[Record] = []
            deadline = time.monotonic() + 30
            while remaining and time.monotonic() < deadline:
                for m in c.consume(num_messages=5000, timeout=0.5):
                    if m.error() is not None:
                        continue
                    p = m.partition()
                    if p in remaining:
                        out.append(
                            Record(
                                topic=topic,
                                value=m.value() or b"",
                                key=m.key(),
                                partition=p,
                                offset=_offset(m),
                                timestamp=m.timestamp()[1] / 1000.0,
                            )
                        )
                        if _offset(m) >= ends[p] - 1:
                            remaining.discard(p)
            return out if limit < 0 else out[-limit:]
        finally:
            c.close()


def _partitions(parts: list[TopicPartition]) -> list[int]:
    return sorted({tp.partition for tp in parts})


def _offset(m: Any) -> int:
    off = m.offset()
    return -1 if off is None else int(off)


def wait_for_broker(settings: KafkaSettings, timeout: float = 30.0) -> None:
    admin = AdminClient(settings.client_config())
    deadline = time.monotonic() + timeout
    while True:
        try:
            admin.list_topics(timeout=2)
            return
        except KafkaException as exc:
            if time.monotonic() > deadline:
                raise DriftlineError(
                    f"no Kafka broker answered at {settings.bootstrap_servers} "
                    f"within {timeout:.0f}s ({exc}); "
                    "check --bootstrap-servers / DRIFTLINE_KAFKA__BOOTSTRAP_SERVERS"
                ) from None


def ensure_topics(settings: KafkaSettings, topics: Iterable[str], partitions: int | None = None) -> list[str]:
    """Create the topics that do not exist yet; returns those created."""
    admin = AdminClient(settings.client_config())
    existing = set(admin.list_topics(timeout=10).topics)
    n = partitions or settings.partitions
    rf = settings.replication_factor
    new = [NewTopic(t, num_partitions=n, replication_factor=rf) for t in topics if t not in existing]
    if not new:
        return []
    created = []
    for topic, fut in admin.create_topics(new, operation_timeout=30).items():
        try:
            fut.result()
            created.append(topic)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise ConfigError(f"cannot create topic {topic!r}: {exc}") from None
    return created
