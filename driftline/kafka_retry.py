"""Retrying a Kafka client call that failed for a passing reason, and naming the fix when it did not.

librdkafka retries produce requests and fetches itself; what it hands back to the caller are the
answers of one-shot requests -- metadata, ``offsets_for_times``, watermarks -- and those fail for a
moment whenever a partition's leader moves (``NOT_LEADER_FOR_PARTITION`` right after a topic is
created or a broker restarts), a request times out or the connection drops. :class:`Backoff` retries
such a call with a bounded exponential backoff (tenacity); an error that is not passing (no access, a
bad certificate, an unknown topic) or one that outlasts the attempts raises a
:class:`~driftline.errors.DriftlineError` that says what to check.

>>> from confluent_kafka import KafkaError, KafkaException
>>> answers = [KafkaException(KafkaError(KafkaError.NOT_LEADER_FOR_PARTITION)), "offsets"]
>>> def call():
...     answer = answers.pop(0)
...     if isinstance(answer, Exception):
...         raise answer
...     return answer
>>> waits = []
>>> Backoff(initial=0.1, sleep=waits.append).call(call, "reading t"), waits
('offsets', [0.1])
>>> def denied():
...     raise KafkaException(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED))
>>> Backoff().call(denied, "reading t")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
driftline.errors.DriftlineError: reading t failed: TOPIC_AUTHORIZATION_FAILED ...grant this client...
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from confluent_kafka import KafkaError, KafkaException
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from driftline.errors import DriftlineError

__all__ = ["RETRIABLE_CODES", "Backoff", "ConsumerFailed", "RetriesExhausted", "is_retriable"]

log = logging.getLogger(__name__)
T = TypeVar("T")

RETRIABLE_CODES = frozenset(
    {
        # leadership moves: the client refreshes its metadata and asks the new leader
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.FENCED_LEADER_EPOCH,
        KafkaError.UNKNOWN_LEADER_EPOCH,
        KafkaError.OFFSET_NOT_AVAILABLE,
        KafkaError.BROKER_NOT_AVAILABLE,
        KafkaError.REPLICA_NOT_AVAILABLE,
        KafkaError.NOT_COORDINATOR,
        KafkaError.COORDINATOR_NOT_AVAILABLE,
        KafkaError.COORDINATOR_LOAD_IN_PROGRESS,
        KafkaError.UNKNOWN_TOPIC_OR_PART,  # for a moment after a topic is created
        KafkaError._UNKNOWN_PARTITION,  # while a restarted broker reloads its metadata
        # transport: a broker restarting, a slow or dropped connection
        KafkaError._TRANSPORT,
        KafkaError._ALL_BROKERS_DOWN,
        # a broker connection torn down under a request (the broker killed): the next one reconnects
        KafkaError._DESTROY_BROKER,
        KafkaError._TIMED_OUT,
        KafkaError.REQUEST_TIMED_OUT,
        KafkaError.NETWORK_EXCEPTION,
        KafkaError._WAIT_COORD,
    }
)

_FIXES = (
    ("AUTHORIZATION", "grant this client's principal Describe and Read on the topic (Kafka ACLs)"),
    ("AUTHENTICATION", "check the user and password (DRIFTLINE_KAFKA__SASL_USERNAME / __SASL_PASSWORD)"),
    ("_SSL", "check the TLS settings (DRIFTLINE_KAFKA__SSL_CA_LOCATION, the broker's certificate)"),
    ("UNKNOWN_TOPIC", "does the topic exist? Driftline's services create their topics at start-up"),
)


class RetriesExhausted(DriftlineError):
    """Kafka kept answering a passing error (a timeout, no leader, no coordinator) for every attempt:
    the broker is away, or the client cannot reach it -- a caller that can start its client over
    (a new consumer) may try that."""


class ConsumerFailed(RetriesExhausted):
    """The consumer hit a fatal error and can do nothing more: e.g. a static member
    (``group.instance.id``) fenced after a broker restart, when the coordinator took its own rejoin
    for another member's. Only a new consumer goes on -- as for :class:`RetriesExhausted`."""


def is_retriable(exc: BaseException) -> bool:
    """A :class:`KafkaException` whose error passes: librdkafka says so, or its code is one of
    :data:`RETRIABLE_CODES` (librdkafka sets ``retriable()`` only on some of the errors it raises)."""
    if not isinstance(exc, KafkaException) or not exc.args or not isinstance(exc.args[0], KafkaError):
        return False
    err = exc.args[0]
    return bool(err.retriable()) or err.code() in RETRIABLE_CODES


@dataclass(frozen=True)
class Backoff:
    """Up to ``attempts`` tries, waiting ``initial`` s, then twice as long each time, at most
    ``maximum`` s (defaults: 6 tries over ~6 s of waiting); ``sleep`` waits (tests record it)."""

    attempts: int = 6
    initial: float = 0.2
    maximum: float = 5.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.initial < 0 or self.maximum < self.initial:
            raise ValueError(
                f"Backoff needs attempts >= 1 and 0 <= initial <= maximum, got {self.attempts}, "
                f"{self.initial}, {self.maximum}"
            )

    def call(self, fn: Callable[[], T], what: str) -> T:
        """``fn()``, retried while it raises a retriable :class:`KafkaException`; ``what`` names the
        operation in the log and in the :class:`DriftlineError` raised when it cannot succeed."""
        retrying = Retrying(
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.initial, max=self.maximum),
            retry=retry_if_exception(is_retriable),
            sleep=self.sleep,
            before_sleep=lambda state: _log_retry(what, state),
            reraise=True,
        )
        try:
            return retrying(fn)
        except KafkaException as exc:
            kind = RetriesExhausted if is_retriable(exc) else DriftlineError
            raise kind(_explain(what, exc, self.attempts)) from None


def _log_retry(what: str, state: RetryCallState) -> None:
    wait = state.next_action.sleep if state.next_action else 0.0
    exc = state.outcome.exception() if state.outcome else None
    log.warning("%s: %s (attempt %d); retrying in %.1f s", what, exc, state.attempt_number, wait)


def _explain(what: str, exc: KafkaException, attempts: int) -> str:
    err = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
    name, detail = (err.name(), err.str()) if err is not None else (type(exc).__name__, str(exc))
    fix = next((f for key, f in _FIXES if key in name), "")
    if is_retriable(exc):
        return (
            f"{what}: Kafka kept answering {name} ({detail}) after {attempts} attempts: is the broker up "
            f"and does every partition have a leader?" + (f" {fix}" if fix else "")
        )
    return f"{what} failed: {name} ({detail}); " + (
        fix or "check the Kafka settings (DRIFTLINE_KAFKA__*) and the broker's log"
    )
