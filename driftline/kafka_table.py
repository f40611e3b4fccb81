"""A topic read as a table: every partition, from the beginning, by every instance.

:class:`KafkaTableReader` is for small topics that every instance of a component must know in full,
whatever input partitions it owns -- the models topic, whose announcements say which model
versions the processor monitors. It joins no consumer group (nothing is committed, no rebalance
moves it) and :meth:`KafkaTableReader.catch_up` reads up to the high watermarks of the moment it is
called: a record acknowledged before the call is returned by it (or by an earlier call).

(Its own module rather than a class in :mod:`driftline.kafka`, which is at the size limit.)
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, TopicPartition

from driftline.config import KafkaSettings
from driftline.errors import DriftlineError
from driftline.transport import Record

__all__ = ["KafkaTableReader"]

log = logging.getLogger(__name__)

# transient while a topic is new or a leader moves (librdkafka does not always flag them retriable)
_RETRIABLE = {
    KafkaError._TIMED_OUT,
    KafkaError._TRANSPORT,
    KafkaError.REQUEST_TIMED_OUT,
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
}


class KafkaTableReader:
    """Reads all of ``topic``; :meth:`catch_up` returns what was added since its last call.

    Retriable broker errors (a leader moving, a request timing out) are retried until ``timeout`` s
    have passed; then a :class:`DriftlineError` says the table could not be read -- a caller that
    must not act on a stale table (the processor) stops, and resumes from its last checkpoint.
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
                # up to the high watermark, as :meth:`catch_up` promises (read_committed stops at the
                # last stable offset and would wait out an open transaction)
                "isolation.level": "read_uncommitted",
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
                raise DriftlineError(
                    f"could not read topic {self.topic!r} up to offsets {ends} within {self.timeout:.0f} s "
                    f"(read up to {self._next}): is the broker reachable?"
                )
            for m in self._c.consume(num_messages=1000, timeout=0.1):
                err = m.error()
                if err is not None:
                    if err.code() != KafkaError._PARTITION_EOF:
                        log.warning("table %s: consumer error (retried): %s", self.topic, err)
                    continue
                p, off = m.partition() or 0, int(m.offset() or 0)
                self._next[p] = off + 1
                ts_type, ts = m.timestamp()
                out.append(
                    Record(self.topic, m.value() or b"", m.key(), p, off, ts / 1000.0 if ts_type else 0.0)
                )
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
                retriable = isinstance(err, KafkaError) and (err.retriable() or err.code() in _RETRIABLE)
                if not retriable or time.monotonic() + backoff > deadline:
                    raise DriftlineError(
                        f"reading topic {self.topic!r}: {err} (does it exist? driftline.kafka.ensure_topics "
                        "creates it; is the broker reachable?)"
                    ) from None
                log.warning("table %s: %s (retrying in %.2f s)", self.topic, err, backoff)
                time.sleep(backoff)
                backoff = min(1.0, backoff * 2)
