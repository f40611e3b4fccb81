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

Every call that waits for the broker has a deadline. librdkafka bounds ``commit_transaction`` and the
others by their ``timeout`` -- except where a request waits for a coordinator that went away: after a
broker restart, ``send_offsets_to_transaction`` was seen waiting on a condition variable with no
timeout at all (librdkafka 2.16; its coordinator request is never re-triggered). So each such call runs
on a helper thread, and one that has not returned ``grace_s`` after its own timeout is abandoned with
its producer: a new producer with the same ``transactional.id`` takes over (its ``init_transactions``
fences the stuck one and aborts its open transaction) and the caller gets :class:`TransactionAborted`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from typing import Any, TypeVar

from confluent_kafka import KafkaError, KafkaException, Producer, TopicPartition

from driftline.config import KafkaSettings
from driftline.errors import DriftlineError
from driftline.kafka import KafkaSink
from driftline.kafka_retry import is_retriable
from driftline.transport import RecordRejected

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
    ``call_timeout_s``: librdkafka's timeout of each transactional call (one that times out is tried
    again, up to ``retry_for`` s: a slow commit is resumed, not aborted); a call that has not returned
    ``grace_s`` after it is abandoned as stuck.
    ``producer``: makes the librdkafka producer from its configuration (a fake one in tests).
    """

    def __init__(
        self,
        settings: KafkaSettings,
        transactional_id: str,
        *,
        transaction_timeout_s: float = 30.0,
        call_timeout_s: float = 10.0,
        retry_for: float = 120.0,
        grace_s: float = 5.0,
        producer: Callable[[dict[str, Any]], Any] = Producer,
        **overrides: Any,
    ) -> None:
        conf: dict[str, Any] = {
            "transactional.id": transactional_id,
            "transaction.timeout.ms": int(transaction_timeout_s * 1000),
            "delivery.timeout.ms": int(transaction_timeout_s * 1000),  # librdkafka: at most the above
        }
        self._factory = producer
        super().__init__(settings, block=True, **conf, **overrides)
        self.transactional_id, self.retry_for, self.grace_s = transactional_id, retry_for, grace_s
        self.call_timeout = call_timeout_s
        self._open = False
        self._ready = False  # init_transactions done on the current producer
        self.commits = self.aborts = self.replaced = 0
        self._abandoned: list[Any] = []  # producers replaced while stuck: fenced, their queues purged
        self._init()

    def _new_producer(self, conf: dict[str, Any]) -> Any:
        return self._factory(conf)

    def _init(self) -> None:
        """``init_transactions`` on the current producer, once (again after a replacement)."""
        if not self._ready:
            self._call(lambda p: p.init_transactions(self.call_timeout), "init_transactions")
            self._ready = True

    def _begin(self) -> None:
        if not self._open:
            self._init()
            self._call(lambda p: p.begin_transaction(), "begin_transaction", bounded=False)
            self._open = True

    def _produce(self, topic: str, key: bytes | None, value: bytes, ts: int) -> None:
        if not self._open:  # per record: the check inline, the call once per transaction
            self._begin()
        try:
            super()._produce(topic, key, value, ts)
        except KafkaException as exc:  # KafkaSink raises only typed errors; this is a state error
            raise self._typed(exc, "produce") from None

    def send(self, topic: str, key: bytes | None, value: bytes, timestamp: float | None = None) -> None:
        """:meth:`KafkaSink.send` in the open transaction; a queue that stays full (the broker away)
        or a producer that failed aborts the transaction instead of stopping the processor."""
        try:
            super().send(topic, key, value, timestamp)
        except (RecordRejected, TransactionAborted, ProducerFenced):
            raise
        except DriftlineError as exc:
            raise TransactionAborted(f"{exc}; the transaction is aborted") from None

    def send_many(self, messages: Iterable[tuple[str, bytes | None, bytes, float | None]]) -> None:
        """:meth:`KafkaSink.send_many` in the open transaction, its errors as :meth:`send`'s."""
        if not self._open:
            self._begin()
        try:
            super().send_many(messages)
        except (RecordRejected, TransactionAborted, ProducerFenced):
            raise
        except DriftlineError as exc:
            raise TransactionAborted(f"{exc}; the transaction is aborted") from None

    def send_to(self, topic: str, partition: int, key: bytes, value: bytes | None) -> None:
        """Send to one partition of ``topic`` in the open transaction (``None``: a tombstone); waits
        for room in the queue (a changelog snapshot can be several MB)."""
        self._begin()
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
        self, offsets: Mapping[tuple[str, int], int], group_metadata: object, timeout: float = 30.0
    ) -> None:
        """Commit what was sent since the last commit, with ``offsets`` (next offset to read per
        (topic, partition)) for the group ``group_metadata`` describes (the consumer's)."""
        if not self._open and not offsets:
            return  # nothing sent, nothing to commit
        timeout = min(timeout, self.call_timeout)
        self._begin()
        if offsets:
            parts = [TopicPartition(t, p, off) for (t, p), off in offsets.items()]
            self._call(
                lambda p: p.send_offsets_to_transaction(parts, group_metadata, timeout),
                "send_offsets_to_transaction",
                timeout,
            )
        self._call(lambda p: p.commit_transaction(timeout), "commit_transaction", timeout)
        self._open = False
        self.commits += 1

    def abort(self, timeout: float = 30.0) -> None:
        """Abort the open transaction (its outputs are discarded); a no-op when none is open."""
        if self._open:
            timeout = min(timeout, self.call_timeout)
            self._call(lambda p: p.abort_transaction(timeout), "abort_transaction", timeout)
            self._open = False
            self.aborts += 1

    def flush(self, timeout: float = 10.0) -> int:
        """Outputs are delivered by :meth:`commit`; a flush outside it only waits for the queue."""
        return super().flush(timeout)

    def _call(
        self, fn: Callable[[Any], T], what: str, timeout: float | None = None, *, bounded: bool = True
    ) -> T:
        """``fn(producer)``, retried with a backoff while it raises a retriable error, for up to
        ``retry_for`` s; each attempt (``bounded``) on a helper thread, abandoned ``grace_s`` after
        ``timeout`` (at most ``call_timeout_s``) -- then the producer is replaced."""
        deadline, wait = time.monotonic() + self.retry_for, 0.1
        limit = min(self.call_timeout, timeout or self.call_timeout) + self.grace_s
        while True:
            producer = self._p
            try:
                return _within(partial(fn, producer), limit, what) if bounded else fn(producer)
            except _Stuck:
                aborted = self._replace(what, limit)
                if what != "init_transactions":  # fence the stuck one now, before the caller rewinds
                    with contextlib.suppress(DriftlineError):
                        self._init()
                self.discard_abandoned("it was replaced")
                raise aborted from None
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

    def _replace(self, what: str, waited: float) -> TransactionAborted:
        """Abandon the current producer (its thread stays blocked in librdkafka until the call gives
        up or the new producer fences it) for a new one with the same ``transactional.id``."""
        self.replaced += 1
        self._abandoned.append(self._p)
        self._p = self._new_producer(self._conf)
        self._open = self._ready = False  # the new one's init_transactions aborts the open transaction
        log.error(
            "%s did not return within %.1f s (librdkafka left waiting for a coordinator after a broker "
            "restart?): producer %d replaced by a new one with transactional.id %r",
            what,
            waited,
            self.replaced,
            self.transactional_id,
        )
        return TransactionAborted(f"{what} did not return within {waited:.1f} s; the producer was replaced")

    def discard_abandoned(self, when: str) -> int:
        """Purge what the producers abandoned as stuck still hold (their transactions are aborted: the
        replacement's ``init_transactions`` fenced them, or the broker times them out), so none of it
        is ever sent, nor left for librdkafka to report at exit as "messages still in queue"; their
        delivery reports (purged, not failed) are served. Returns how many messages were discarded."""
        discarded = 0
        for k, producer in enumerate(self._abandoned, start=1):
            try:
                queued = len(producer)
                producer.purge(in_queue=True, in_flight=True, blocking=False)
                producer.poll(0)
            except (KafkaException, RuntimeError) as exc:  # a closed or fatally failed handle
                log.debug("purging abandoned producer %d: %s", k, exc)
                continue
            if queued:
                discarded += queued
                log.warning(
                    "%s: discarded %d message(s) still queued in abandoned producer %d of transactional.id "
                    "%r -- its transaction was aborted when it was replaced, nothing of it is committed",
                    when,
                    queued,
                    k,
                    self.transactional_id,
                )
        return discarded

    def close(self) -> None:
        """At shutdown: the abandoned producers' queues are purged, deliberately and logged (an open
        transaction of the current producer is the runner's to commit or abort before)."""
        self.discard_abandoned("closing")
        self._abandoned.clear()

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


class _Stuck(Exception):
    """A call into librdkafka did not return by its deadline."""


def _within(fn: Callable[[], T], seconds: float, what: str) -> T:
    """``fn()`` on a daemon thread; its result or exception if it returns within ``seconds``, else
    :class:`_Stuck` (the thread is left to finish, or not, on its own)."""
    box: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=run, name=f"driftline-{what}", daemon=True).start()
    if not done.wait(seconds):
        raise _Stuck(what)
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]
