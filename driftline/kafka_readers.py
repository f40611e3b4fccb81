"""Topics read outside a consumer group: nothing is committed, no rebalance moves the reader.

* :class:`KafkaWindowReader` -- a topic from a time (``offsets_for_times``) to its current end: the
  retrain worker gathers its data window straight from the log.
* :class:`KafkaTableReader` -- a topic read as a table: every partition, from the beginning, by every
  instance.

:class:`KafkaTableReader` is for small topics that every instance of a component must know in full,
whatever input partitions it owns -- the models topic, whose announcements say which model
versions the processor monitors. It joins no consumer group (nothing is committed, no rebalance
moves it) and :meth:`KafkaTableReader.catch_up` reads up to the high watermarks of the moment it is
called: a record acknowledged before the call is returned by it (or by an earlier call). It reads
``read_committed``, so a models topic written in transactions shows only what they committed: "the end"
is then the last stable offset, which an open transaction holds back until it ends.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from driftline.config import KafkaSettings
from driftline.errors import DriftlineError
from driftline.kafka import CONSUMER_DEFAULTS, to_record
from driftline.kafka_retry import Backoff, RetriesExhausted, is_retriable
from driftline.transport import Record

__all__ = ["KafkaTableReader", "KafkaWindowReader", "read_partition"]

log = logging.getLogger(__name__)


class KafkaWindowReader:
    """Reads ``topic`` from the first record at or after ``since`` to the end, all partitions.

    Finding where to start (metadata, ``offsets_for_times``, end offsets) is retried with a bounded
    exponential backoff (:class:`~driftline.kafka_retry.Backoff`) while Kafka answers with a passing
    error -- a leader moving (``NOT_LEADER_FOR_PARTITION``), a timeout, a broker restarting; any other
    error, or one that outlasts the attempts, raises a :class:`DriftlineError` that says what to check.
    ``consumer`` makes the consumer from its configuration (a fake one in tests). Reading to the end
    takes at most ``read_timeout`` s, else :class:`RetriesExhausted`: never a window cut short."""

    def __init__(
        self,
        settings: KafkaSettings,
        *,
        backoff: Backoff | None = None,
        consumer: Callable[[dict[str, Any]], Any] = Consumer,
        read_timeout: float = 30.0,
    ) -> None:
        self.settings = settings
        self.backoff = backoff or Backoff()
        self._consumer = consumer
        self.read_timeout = read_timeout

    def read_since(self, topic: str, since: float, limit: int) -> list[Record]:
        c = self._consumer(
            {
                **self.settings.client_config(),
                **CONSUMER_DEFAULTS,
                "group.id": f"driftline-reader-{uuid.uuid4().hex[:8]}",
                "enable.partition.eof": True,  # the end of a partition is an event: no waiting for it
            }
        )
        try:
            what = f"reading {topic} at {self.settings.bootstrap_servers}"
            assign, ends = self.backoff.call(lambda: _start_offsets(c, topic, since), what)
            if not assign:
                return []
            c.assign(assign)
            out = _drain(c, topic, {tp.partition for tp in assign}, ends, self.read_timeout)
            return out if limit < 0 else out[-limit:]
        finally:
            c.close()


def _start_offsets(c: Any, topic: str, since: float) -> tuple[list[TopicPartition], dict[int, int]]:
    """The partitions of ``topic`` holding records at or after ``since``, each at the first such
    offset, and every partition's end offset. An error of the topic or of one partition is raised as
    a :class:`KafkaException`, so that a passing one is retried."""
    meta = c.list_topics(topic, timeout=10).topics[topic]
    if meta.error is not None and meta.error.code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
        raise KafkaException(meta.error)
    parts = sorted(meta.partitions)
    if not parts:
        return [], {}  # no such topic: nothing to read
    wanted = c.offsets_for_times([TopicPartition(topic, p, int(since * 1000)) for p in parts], timeout=10)
    for tp in wanted:
        if tp.error is not None:
            raise KafkaException(tp.error)
    ends = {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts}
    return [tp for tp in wanted if 0 <= tp.offset < ends[tp.partition]], ends


def _drain(
    c: Any, topic: str, remaining: set[int], ends: dict[int, int], timeout: float = 30.0
) -> list[Record]:
    """Consume the assigned partitions up to the end offsets read before. A partition not read to
    its end within ``timeout`` s (the broker went away mid-read) raises
    :class:`~driftline.kafka_retry.RetriesExhausted`: a window cut short is never returned as if it
    were whole -- the retrain worker would train on it (a window of its own, not the stream's) or take
    an announcement for missing and publish it twice. The caller tries again later."""
    out: list[Record] = []
    deadline = time.monotonic() + timeout
    while remaining and time.monotonic() < deadline:
        for m in c.consume(num_messages=5000, timeout=0.5):
            p, err = m.partition(), m.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    remaining.discard(p)  # the end (a transaction marker may follow the last record)
                continue
            if p in remaining:
                rec = to_record(m, topic)
                out.append(rec)
                if rec.offset >= ends[p] - 1:
                    remaining.discard(p)
    if remaining:
        raise RetriesExhausted(
            f"reading {topic}: partitions {sorted(remaining)} not read to their end offsets {ends} within "
            f"{timeout:.0f} s (read {len(out)} records); is the broker reachable? Try again later"
        )
    return out


def read_partition(
    settings: KafkaSettings, topic: str, partition: int, timeout: float = 60.0
) -> list[Record]:
    """Every committed record of one partition, from its start to its end (``read_committed``: up to
    the last stable offset -- a transaction still open is not waited for, an aborted one never seen).
    A changelog's restore reads it so: what a committed transaction wrote, and only that."""
    c = Consumer(
        {
            **settings.client_config(),
            **CONSUMER_DEFAULTS,
            "group.id": f"driftline-restore-{uuid.uuid4().hex[:8]}",  # never joined: assign() only
            "isolation.level": "read_committed",
            "enable.partition.eof": True,
            "fetch.wait.max.ms": 20,
        }
    )
    out: list[Record] = []
    deadline = time.monotonic() + timeout
    try:
        c.assign([TopicPartition(topic, partition, OFFSET_BEGINNING)])
        while True:
            if time.monotonic() > deadline:
                raise DriftlineError(
                    f"could not read {topic} [{partition}] to its end within {timeout:.0f} s"
                )
            for m in c.consume(num_messages=1000, timeout=0.2):
                err = m.error()
                if err is None:
                    out.append(to_record(m, topic))
                elif err.code() == KafkaError._PARTITION_EOF:
                    return out
                elif not err.retriable() and err.code() != KafkaError._TRANSPORT:
                    raise DriftlineError(f"reading {topic} [{partition}]: {err}")
    finally:
        c.close()


class KafkaTableReader:
    """Reads all of ``topic``; :meth:`catch_up` returns what was added since its last call.

    Retriable broker errors (a leader moving, a request timing out) are retried until ``timeout`` s
    have passed; then :class:`~driftline.kafka_retry.RetriesExhausted` says the table could not be
    read -- a caller must not act on a stale table: the exactly-once processor starts its partitions
    over from their committed state, an at-least-once one stops and resumes from its checkpoint.
    The partitions of the topic are looked up again every ``refresh_s`` s (a topic can grow).
    """

    def __init__(
        self,
        settings: KafkaSettings,
        topic: str,
        *,
        timeout: float = 30.0,
        refresh_s: float = 10.0,
        **overrides: Any,
    ) -> None:
        self.topic, self.timeout, self.refresh_s = topic, timeout, refresh_s
        self._c = Consumer(
            {
                **settings.client_config(),
                "group.id": f"driftline-table-{uuid.uuid4().hex[:8]}",  # never joined: assign() only
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest",  # records deleted under us: go on from what is left
                # committed announcements only; the watermark queries then answer the last stable
                # offset, so catch_up reads up to what is committed and never waits for an open
                # transaction
                "isolation.level": "read_committed",
                "fetch.queue.backoff.ms": 50,
                "fetch.wait.max.ms": 20,  # a fetch still waiting when paused delays a watermark query
                **overrides,
            }
        )
        self._next: dict[int, int] = {}  # per assigned partition: the next offset to read
        self._refreshed = -float("inf")

    def catch_up(self) -> list[Record]:
        """The records added to the topic since the last call, up to its current high watermarks."""
        deadline = time.monotonic() + self.timeout
        self._assign_new_partitions(deadline)
        ends = {p: self._retry(lambda p=p: self._high_watermark(p), deadline) for p in self._next}
        out: list[Record] = []
        behind = {p for p, end in ends.items() if self._next[p] < end}
        if behind:
            self._c.resume([TopicPartition(self.topic, p) for p in behind])
        try:
            self._read(behind, ends, deadline, out)
        finally:
            if behind:  # a paused partition is not fetched: no long poll delays the next watermark query
                self._c.pause([TopicPartition(self.topic, p) for p in behind])
        return out

    def _read(self, behind: set[int], ends: dict[int, int], deadline: float, out: list[Record]) -> None:
        while behind:
            if time.monotonic() > deadline:
                raise RetriesExhausted(
                    f"could not read topic {self.topic!r} up to offsets {ends} within {self.timeout:.0f} s "
                    f"(read up to {self._next}): is the broker reachable?"
                )
            for m in self._c.consume(num_messages=1000, timeout=0.1):
                err = m.error()
                if err is not None:
                    if err.code() != KafkaError._PARTITION_EOF:
                        log.warning("table %s: consumer error (retried): %s", self.topic, err)
                    continue
                rec = to_record(m, self.topic)
                self._next[rec.partition] = rec.offset + 1
                out.append(rec)
            for tp in self._c.position([TopicPartition(self.topic, p) for p in behind]):
                if tp.offset >= 0:  # past control records (transaction markers) too
                    self._next[tp.partition] = max(self._next[tp.partition], tp.offset)
            behind = {p for p in behind if self._next[p] < ends[p]}

    def close(self) -> None:
        self._c.close()

    def _assign_new_partitions(self, deadline: float) -> None:
        if time.monotonic() - self._refreshed < self.refresh_s:
            return
        new = sorted(set(self._retry(self._partitions, deadline)) - set(self._next))
        if new:
            self._next.update({p: 0 for p in new})
            parts = [TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in new]
            self._c.incremental_assign(parts)
            self._c.pause(parts)  # fetched only while behind (see catch_up)
        self._refreshed = time.monotonic()

    def _partitions(self) -> list[int]:
        found = self._c.list_topics(self.topic, timeout=5).topics.get(self.topic)
        if found is None or found.error is not None:  # a new topic's leaders may not be elected yet
            raise KafkaException(found.error if found else KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART))
        return list(found.partitions)

    def _high_watermark(self, partition: int) -> int:
        low, high = self._c.get_watermark_offsets(
            TopicPartition(self.topic, partition), timeout=5, cached=False
        )
        if self._next[partition] < low:  # retention deleted what we had not read: start at what is left
            self._next[partition] = low
        return int(high)

    def _retry(self, call: Any, deadline: float) -> Any:
        backoff = 0.05
        while True:
            try:
                return call()
            except KafkaException as exc:
                err = exc.args[0]
                if not is_retriable(exc) or time.monotonic() + backoff > deadline:
                    kind = RetriesExhausted if is_retriable(exc) else DriftlineError
                    raise kind(
                        f"reading topic {self.topic!r}: {err} (does it exist? "
                        "driftline.kafka_admin.ensure_topics creates it; is the broker reachable?)"
                    ) from None
                log.warning("table %s: %s (retrying in %.2f s)", self.topic, err, backoff)
                time.sleep(backoff)
                backoff = min(1.0, backoff * 2)
                if err.code() == KafkaError._UNKNOWN_PARTITION:
                    self._refresh_metadata(deadline)

    def _refresh_metadata(self, deadline: float) -> None:
        """Ask for the topic's metadata now: librdkafka answers ``_UNKNOWN_PARTITION`` from its cache
        (emptied while a broker restarts) until a metadata request fills it again."""
        try:
            self._c.list_topics(self.topic, timeout=max(0.1, min(2.0, deadline - time.monotonic())))
        except KafkaException as exc:  # the broker still away: the next attempt says so
            log.debug("table %s: metadata refresh failed: %s", self.topic, exc)
