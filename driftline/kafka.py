"""Kafka transport over confluent-kafka: the same Sink/Source/WindowReader the in-memory bus has.

* :class:`KafkaSink` -- idempotent producer, asynchronous delivery callbacks; non-blocking (drops
  at once with a typed :class:`~driftline.transport.Dropped` when the queue is full) or blocking
  (processors: never drops); a record that can never be sent raises ``RecordRejected``.
* :class:`KafkaSource` -- a consumer-group member reading batches with ``consume(num_messages)``;
  offsets are committed explicitly after outputs are flushed (at-least-once), or sent with them in a
  transaction of a :class:`TransactionalSink` (:mod:`driftline.kafka_transactions`: exactly-once).
* :mod:`driftline.kafka_readers` -- topics read outside a consumer group (a window since a time,
  a whole table).
* :func:`ensure_topics` -- creates Driftline's topics with the partition count you mean.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition

from driftline.config import KafkaSettings
from driftline.errors import DriftlineError
from driftline.kafka_poll import consume
from driftline.kafka_retry import Backoff, ConsumerFailed
from driftline.transport import DeliveryFailureListener, Dropped, Record, RecordRejected

__all__ = [
    "KafkaSink",
    "KafkaSource",
    "QueueFull",
    "RebalanceListener",
    "to_record",
]

log = logging.getLogger(__name__)


_PURGED = (KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT)


class QueueFull(DriftlineError):
    """A blocking sink found no room in the producer's queue for its whole ``block_timeout`` (the broker
    away): nothing was sent; sending the same record again later is safe."""


# librdkafka's default fetch.queue.backoff.ms (1000) stalls a consumer slower than its fetcher
# for ~0.9 s each time the prefetch queue fills; 50 ms removes the stalls.
# Prefetch per partition: 5,000 messages or 4 MB, not librdkafka's 100,000 / 64 MB. A processor
# consumes 5,000-record batches, so more is never needed at once; what librdkafka prefetched for a
# partition the processor pauses (its flow control between the inputs) is dropped and fetched again on
# resume, and the prefetching thread competes with the processing one for the same cores.
# `driftline process`, 8 features, A/B on a local broker: 90k -> 123k events/s and ~30 MB less RSS;
# 200 features: 12.0k -> 14.0k.
CONSUMER_DEFAULTS = {
    "fetch.queue.backoff.ms": 50,
    "queued.min.messages": 5_000,
    "queued.max.messages.kbytes": 4_096,
    "enable.auto.commit": False,
    "auto.offset.reset": "earliest",
}


# Retriable produce errors (a leader moving, NOT_ENOUGH_REPLICAS, a timeout, a broker restart) are
# retried by librdkafka itself, in order and without duplicates: the producer is idempotent, so a retried
# batch keeps its sequence numbers and the broker discards a copy it already has. A retry from Python
# would be a new message (a possible duplicate, out of order) that could only start once librdkafka
# gave up after delivery.timeout.ms -- so there is none. librdkafka's defaults, spelled out:
_PRODUCER_DEFAULTS: dict[str, Any] = {
    "enable.idempotence": True,
    "retries": 2_147_483_647,  # bounded by delivery.timeout.ms, not by a count
    "retry.backoff.ms": 100,  # doubled per retry of a batch (with jitter) up to retry.backoff.max.ms
    "retry.backoff.max.ms": 1000,
    "delivery.timeout.ms": 300_000,  # then the record fails: a delivery report with an error
    "linger.ms": 5,
    "compression.type": "lz4",
    # reports of failed deliveries only: a Python callback per delivered record cost ~1.2 us of its
    # ~3.3 us produce (every listener here acts on failures; none counted successes)
    "delivery.report.only.error": True,
}


_ANY_PARTITION = -1
"""librdkafka's RD_KAFKA_PARTITION_UA: the partitioner picks one by key. ``produce`` is called with
positional arguments -- (topic, value, key, partition, callback, on_delivery, timestamp), its
keyword list, where ``callback`` and ``on_delivery`` are aliases -- ~0.6 us a record less than with
keywords (``test_broker.py`` checks that keys, partitions and timestamps arrive as sent)."""


class KafkaSink:
    """Idempotent producer with asynchronous delivery reports.

    ``block=False`` (the SDK's request path): with librdkafka's queue full it serves delivery reports
    once (``poll(0)`` frees what was delivered), tries once more, else raises
    :class:`~driftline.transport.Dropped` at once -- it never sleeps. ``block=True`` (processors,
    workers): it waits for room, so an output is never dropped; after ``block_timeout`` s a
    :class:`DriftlineError` stops the component, which resumes from its last committed offsets.
    A record that can never be sent (over ``message.max.bytes``, unknown topic, invalid argument)
    raises :class:`~driftline.transport.RecordRejected` (topic, size, limit) in both modes, never a raw
    ``KafkaException``, so a processor can dead-letter it. A delivery that fails later is counted in
    ``failed`` and per librdkafka error name in ``failures_by_reason``, and told to listeners
    (:meth:`add_failure_listener`); reports are served every 1,000 sends, on a full queue and by flush.
    """

    def __init__(
        self, settings: KafkaSettings, *, block: bool = False, block_timeout: float = 60.0, **overrides: Any
    ) -> None:
        conf = {**settings.client_config(), **_PRODUCER_DEFAULTS, **overrides}
        if "message.timeout.ms" in overrides:  # an alias: the caller's spelling wins
            conf.pop("delivery.timeout.ms", None)
        self._conf = conf
        self._p = self._new_producer(conf)
        self.block, self.block_timeout = block, block_timeout
        self.max_bytes = int(conf.get("message.max.bytes", 1_000_000))  # librdkafka's default
        self.failed = 0
        self.failures_by_reason: dict[str, int] = {}
        self.dropped = 0
        self.purged = 0  # purged on purpose: neither delivered nor failed
        self._sends = 0
        self._listeners: list[DeliveryFailureListener] = []
        self._listener_failed = False

    def _new_producer(self, conf: dict[str, Any]) -> Any:
        """The librdkafka producer (a transactional sink replaces one stuck in a call: a new one)."""
        return Producer(conf)

    def add_failure_listener(self, listener: DeliveryFailureListener) -> None:
        """Call ``listener(topic, key, value, reason)`` for each delivery that fails from now on
        (on the thread that serves delivery reports: one calling ``send`` or ``flush``)."""
        self._listeners.append(listener)

    def _on_delivery(self, err: KafkaError | None, msg: Any) -> None:
        if err is None:  # not reported (delivery.report.only.error), but a caller's config may ask
            return
        if err.code() in _PURGED:  # discarded on purpose (an abandoned transactional producer)
            self.purged += 1
            return
        self.failed += 1
        reason = err.name()
        n = self.failures_by_reason[reason] = self.failures_by_reason.get(reason, 0) + 1
        if str(n).rstrip("0") == "1":  # the 1st, 10th, 100th ...: a dead broker must not flood the log
            log.error("delivery to %s failed: %s (%d such failures so far)", msg.topic(), err, n)
        for listener in self._listeners:
            try:
                listener(msg.topic() or "", msg.key(), msg.value(), reason)
            except Exception:  # a listener never breaks the sink
                if not self._listener_failed:
                    self._listener_failed = True
                    log.exception("a delivery failure listener raised (logged once)")

    def _produce(self, topic: str, key: bytes | None, value: bytes, ts: int) -> None:
        try:
            self._p.produce(topic, value, key, _ANY_PARTITION, self._on_delivery, None, ts)
        except KafkaException as exc:  # BufferError (queue full) is not one of these
            err: KafkaError = exc.args[0]
            if err.fatal():
                raise DriftlineError(f"the producer for {topic} failed fatally: {err}; restart it") from None
            if err.txn_requires_abort() or err.code() == KafkaError._STATE:
                raise  # a transaction's state, not the record's: TransactionalSink's to handle
            size, reason = len(value) + len(key or b""), err.name()
            hint = "dead-letter it, or raise message.max.bytes (and the topic's max.message.bytes)"
            if "SIZE" not in reason:
                hint = "create the topic or check its name" if "TOPIC" in reason else ""
            raise RecordRejected(topic, size, self.max_bytes, reason, hint) from None

    def send(self, topic: str, key: bytes | None, value: bytes, timestamp: float | None = None) -> None:
        ts = int(timestamp * 1000) if timestamp is not None else 0
        self._sends += 1
        if self._sends % 1000 == 0:
            self._p.poll(0)  # serve delivery reports now and then: they hold queue space
        try:
            return self._produce(topic, key, value, ts)
        except BufferError:
            pass
        self._p.poll(0)  # queue full: serve delivery reports once, freeing what was delivered
        try:
            return self._produce(topic, key, value, ts)
        except BufferError:
            pass
        if not self.block:
            self.dropped += 1
            raise Dropped(topic, "queue_full", "the producer's queue is full: is the broker reachable?")
        deadline = time.monotonic() + self.block_timeout
        while time.monotonic() < deadline:  # blocking: wait for room, never drop
            self._p.poll(0.05)
            try:
                return self._produce(topic, key, value, ts)
            except BufferError:
                continue
        raise QueueFull(
            f"producer queue to {topic} stayed full for {self.block_timeout:.0f} s: is the broker reachable?"
        )

    def send_many(self, messages: Iterable[tuple[str, bytes | None, bytes, float | None]]) -> None:
        """:meth:`send` each ``(topic, key, value, timestamp)`` in order: the common case (room in the
        queue) in one loop around the producer, ~1 us less per record than a :meth:`send` each; a full
        queue or a producer error takes :meth:`send`'s path for that record (wait, typed errors)."""
        produce, report, any_partition = self._p.produce, self._on_delivery, _ANY_PARTITION
        for topic, key, value, ts in messages:
            try:
                ms = int(ts * 1000) if ts is not None else 0
                produce(topic, value, key, any_partition, report, None, ms)  # see _ANY_PARTITION
            except (BufferError, KafkaException):
                self.send(topic, key, value, ts)
                produce = self._p.produce  # a transactional sink may have replaced a stuck producer
        self._p.poll(0)  # serve the delivery reports: they hold queue space

    def flush(self, timeout: float = 10.0) -> int:
        """Wait up to ``timeout`` s for queued records; returns how many are still queued."""
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
        self._conf = {**settings.client_config(), **CONSUMER_DEFAULTS, "group.id": group, **overrides}
        self._topics = list(topics)
        self._listener = listener
        self._c = self._subscribed()
        self.errors = 0
        self.renewed = 0

    def _subscribed(self) -> Any:
        c = Consumer(self._conf)
        c.subscribe(self._topics, on_assign=self._assigned, on_revoke=self._revoked, on_lost=self._lost)
        return c

    def renew(self) -> None:
        """Replace the librdkafka consumer by a new member of the same group, which is assigned
        partitions again (the listener is told). For a consumer left unable to reach its group
        coordinator after a broker restart (librdkafka keeps waiting for a broker it dropped from its
        metadata). The old one is closed on a helper thread; its rebalance events are not passed on."""
        old, self._c = self._c, self._subscribed()
        self.renewed += 1
        threading.Thread(
            target=_close_quietly, args=(old,), name="driftline-consumer-close", daemon=True
        ).start()

    def listen(self, listener: RebalanceListener) -> None:
        self._listener = listener

    def _assigned(self, consumer: Any, parts: list[TopicPartition]) -> None:
        if self._listener is None or consumer is not self._c:
            return
        start = self._listener.on_assign(_partitions(parts))
        for tp in parts:
            if (tp.topic, tp.partition) in start:
                tp.offset = start[(tp.topic, tp.partition)]
        consumer.assign(parts)

    def _revoked(self, consumer: Any, parts: list[TopicPartition]) -> None:
        if self._listener is not None and consumer is self._c:
            self._listener.on_revoke(_partitions(parts))

    def _lost(self, consumer: Any, parts: list[TopicPartition]) -> None:
        if self._listener is not None and consumer is self._c:
            self._listener.on_lost(_partitions(parts))

    def poll(self, max_records: int, timeout: float = 0.0) -> list[Record]:
        msgs = consume(self._c, max_records, timeout)  # what has arrived, not a full batch (kafka_poll)
        out: list[Record] = []
        add = out.append
        for m in msgs:
            err = m.error()
            if err is None:
                add(to_record(m))
            elif err.code() == KafkaError._FATAL:  # this consumer is done: only a new one reads on
                self.errors += 1
                raise ConsumerFailed(f"the consumer failed: {err.str()}")
            elif err.code() != KafkaError._PARTITION_EOF:
                self.errors += 1
                log.error("consumer error: %s", err)
        return out

    def pause(self, keys: list[tuple[str, int]]) -> None:
        """Stop fetching these (topic, partition)s until :meth:`resume` (flow control between inputs)."""
        self._c.pause([TopicPartition(t, p) for t, p in keys])

    def resume(self, keys: list[tuple[str, int]]) -> None:
        self._c.resume([TopicPartition(t, p) for t, p in keys])

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

    def committed(self, keys: Sequence[tuple[str, int]], timeout: float = 5.0) -> dict[tuple[str, int], int]:
        """The group's committed next offsets of ``keys`` ((topic, partition)); those never committed
        are left out. In ``read_committed`` (the default) the broker answers only once no transaction
        holds uncommitted offsets of them (KIP-447): retried while it says to wait, ~10 s; then, or
        after timing out each time (a coordinator it cannot reach),
        :class:`~driftline.kafka_retry.RetriesExhausted`."""
        if not keys:
            return {}
        parts = [TopicPartition(t, p) for t, p in keys]
        found = Backoff(attempts=8, maximum=2.0).call(
            lambda: self._c.committed(parts, timeout=timeout), "reading the committed offsets"
        )
        return {(tp.topic, tp.partition): tp.offset for tp in found if tp.offset >= 0}

    def ends(
        self, keys: Sequence[tuple[str, int]], timeout: float = 1.0
    ) -> dict[tuple[str, int], int] | None:
        """The end offsets of ``keys`` ((topic, partition)) asked of the broker now (high watermarks;
        ``read_committed``: last stable offsets); None when it cannot say (away, restarting)."""
        try:
            return {
                (t, p): int(self._c.get_watermark_offsets(TopicPartition(t, p), timeout, False)[1])
                for t, p in keys
            }
        except KafkaException:
            return None

    def group_metadata(self) -> object:
        """The group member's identity and generation, for ``send_offsets_to_transaction``."""
        return self._c.consumer_group_metadata()

    def seek(self, offsets: Mapping[tuple[str, int], int]) -> None:
        """Read the assigned (topic, partition)s from these offsets on (a rewind after an abort)."""
        for (t, p), off in offsets.items():
            self._c.seek(TopicPartition(t, p, off))

    def close(self) -> None:
        """Leave the group (the listener is told of the revocation), then drop the listener."""
        try:
            self._c.close()
        finally:
            self._listener = None


def _close_quietly(consumer: Any) -> None:
    try:
        consumer.close()
    except Exception as exc:  # an abandoned consumer: nothing depends on how it ends
        log.debug("closing a replaced consumer: %s", exc)


def _partitions(parts: list[TopicPartition]) -> list[int]:
    return sorted({tp.partition for tp in parts})


def to_record(m: Any, topic: str | None = None) -> Record:
    """A consumed confluent-kafka message as a :class:`Record` (timestamps in seconds; 0.0 if none).
    Built positionally: ~0.2 us a record less than with keywords, on the consumer's hot path."""
    off = m.offset()
    ts_type, ts = m.timestamp()
    return Record(
        topic or m.topic() or "",
        m.value() or b"",
        m.key(),
        m.partition() or 0,
        -1 if off is None else off,
        ts / 1000.0 if ts_type else 0.0,
    )
