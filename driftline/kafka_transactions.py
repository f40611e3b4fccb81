"""A transactional producer: outputs and the input offsets they were made from commit together.

:class:`TransactionalSink` is a :class:`~driftline.kafka.KafkaSink` whose sends go into an open Kafka
transaction (begun at the first send after a commit or an abort); :meth:`TransactionalSink.commit`
adds the consumer group's input offsets (``send_offsets_to_transaction``) and commits, so a consumer
reading ``read_committed`` sees a processor's outputs exactly when its input offsets move past the
records that made them -- never twice, never without them.

The ``transactional.id`` names one processor *instance*: the same id after a restart makes
``init_transactions`` abort the killed instance's open transaction at once (consumers in
``read_committed`` would otherwise wait for ``transaction.timeout.ms``) and fences it if it is still
alive; two live instances with one id fence each other (:class:`ProducerFenced`).

Errors, as librdkafka classifies them:

* retriable (a timeout, a coordinator moving while a broker restarts): the same call is tried again
  with a backoff, for up to ``retry_for`` seconds;
* abortable (a delivery failed, the consumer group's generation changed under the transaction:
  ``UNKNOWN_MEMBER_ID``, ``ILLEGAL_GENERATION``...): :class:`TransactionAborted` -- the caller calls
  :meth:`TransactionalSink.abort` and rewinds its inputs to the last committed offsets;
* fatal (fenced by another producer with this id): :class:`ProducerFenced`; the process must stop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from driftline.config import KafkaSettings
from driftline.errors import DriftlineError
from driftline.kafka import KafkaSink
from driftline.kafka_retry import is_retriable

__all__ = ["ProducerFenced", "TransactionAborted", "TransactionalSink"]

log = logging.getLogger(__name__)
T = TypeVar("T")


class TransactionAborted(DriftlineError):
    """The open transaction cannot commit (it must be aborted): its outputs are discarded and the
    inputs they came from must be read again from the last committed offsets."""


class ProducerFenced(DriftlineError):
    """Another producer took this ``transactional.id`` over: this one can never commit again."""


class TransactionalSink(KafkaSink):
    """A blocking :class:`KafkaSink` inside Kafka transactions (see the module's docstring).

    ``transaction_timeout_s``: how long the broker lets a transaction stay open before aborting it
    (a killed instance with a *new* id holds ``read_committed`` readers up to that long).
    """

    def __init__(
        self,
        settings: KafkaSettings,
        transactional_id: str,
        *,
        transaction_timeout_s: float = 30.0,
        retry_for: float = 120.0,
        **overrides: Any,
    ) -> None:
        conf: dict[str, Any] = {
            "transactional.id": transactional_id,
            "transaction.timeout.ms": int(transaction_timeout_s * 1000),
            "delivery.timeout.ms": int(transaction_timeout_s * 1000),  # librdkafka: at most the above
        }
        super().__init__(settings, block=True, **conf, **overrides)
        self.transactional_id, self.retry_for = transactional_id, retry_for
        self._open = False
        self.commits = self.aborts = 0
        self._call(lambda: self._p.init_transactions(30), "init_transactions")

    def _produce(self, topic: str, key: bytes | None, value: bytes, ts: int) -> None:
        if not self._open:
            self._call(self._p.begin_transaction, "begin_transaction")
            self._open = True
        try:
            super()._produce(topic, key, value, ts)
        except KafkaException as exc:  # KafkaSink raises only typed errors; this is a state error
            raise self._typed(exc, "produce") from None

    def send_to(self, topic: str, partition: int, key: bytes, value: bytes | None) -> None:
        """Send to one partition of ``topic`` in the open transaction (``None``: a tombstone); waits
        for room in the queue (a changelog snapshot can be several MB)."""
        if not self._open:
            self._call(self._p.begin_transaction, "begin_transaction")
            self._open = True
        deadline = time.monotonic() + self.block_timeout
        while True:
            try:
                self._p.produce(topic, value, key, partition=partition, on_delivery=self._on_delivery)
                return
            except BufferError:
                if time.monotonic() > deadline:
                    raise TransactionAborted(
                        f"producer queue to {topic} stayed full: is the broker up?"
                    ) from None
                self._p.poll(0.05)
            except KafkaException as exc:
                raise self._typed(exc, f"produce to {topic}") from None

    def commit(
        self, offsets: Mapping[tuple[str, int], int], group_metadata: object, timeout: float = 60.0
    ) -> None:
        """Commit what was sent since the last commit, with ``offsets`` (next offset to read per
        (topic, partition)) for the group ``group_metadata`` describes (the consumer's)."""
        if not self._open and not offsets:
            return  # nothing sent, nothing to commit
        if not self._open:
            self._call(self._p.begin_transaction, "begin_transaction")
            self._open = True
        if offsets:
            parts = [TopicPartition(t, p, off) for (t, p), off in offsets.items()]
            self._call(
                lambda: self._p.send_offsets_to_transaction(parts, group_metadata, timeout), "send offsets"
            )
        self._call(lambda: self._p.commit_transaction(timeout), "commit_transaction")
        self._open = False
        self.commits += 1

    def abort(self, timeout: float = 60.0) -> None:
        """Abort the open transaction (its outputs are discarded); a no-op when none is open."""
        if self._open:
            self._call(lambda: self._p.abort_transaction(timeout), "abort_transaction")
            self._open = False
            self.aborts += 1

    def flush(self, timeout: float = 10.0) -> int:
        """Outputs are delivered by :meth:`commit`; a flush outside it only waits for the queue."""
        return super().flush(timeout)

    def _call(self, fn: Callable[[], T], what: str) -> T:
        """``fn()``, retried with a backoff while it raises a retriable error, for up to ``retry_for`` s."""
        deadline, wait = time.monotonic() + self.retry_for, 0.1
        while True:
            try:
                return fn()
            except KafkaException as exc:
                err = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
                abortable = err is not None and err.txn_requires_abort()
                if abortable or err is None or err.fatal() or not is_retriable(exc):
                    raise self._typed(exc, what) from None
                if time.monotonic() + wait > deadline:
                    raise TransactionAborted(
                        f"{what} kept failing for {self.retry_for:.0f} s ({err}): is the broker reachable?"
                    ) from None
                log.warning("%s: %s; retrying in %.1f s", what, err, wait)
                time.sleep(wait)
                wait = min(2.0, wait * 2)

    def _typed(self, exc: KafkaException, what: str) -> DriftlineError:
        err = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
        if err is not None and err.fatal():
            return ProducerFenced(
                f"{what}: the producer with transactional.id {self.transactional_id!r} failed fatally "
                f"({err}): "
                "another instance runs with the same id (give each instance its own "
                "--transactional-id / DRIFTLINE_STATE__TRANSACTIONAL_ID), or it was fenced after a long "
                "outage; restart it"
            )
        return TransactionAborted(f"{what}: {err if err is not None else exc}; the transaction is aborted")
