"""At-least-once across a broker outage: wait, try again, never exit, never commit ahead of outputs.

While the broker is away an at-least-once runner meets three errors, each at a point where its state
is whole (every polled record processed and its outputs handed to the producer, or none of them):

* a checkpoint's flush leaves outputs queued (:class:`~stream_processors.runners.exceptions.DeliveryError`
  with no failed delivery): they are still in librdkafka's queue, retried by the idempotent producer
  until ``delivery.timeout.ms``; the input offsets are not committed;
* the offset commit itself fails with a retriable Kafka error (the group coordinator away);
* the models topic cannot be read before a batch (:class:`~driftline.kafka_retry.RetriesExhausted`):
  the batch is held and processed once it can.

:func:`passing` says which errors those are; :class:`Outage` paces the retries with a bounded
exponential backoff. A failed delivery (an outage longer than ``delivery.timeout.ms``) is not
passing: those outputs are gone, and only a replay from the last checkpoint brings them back -- the
runner stops, as before, and its restart replays.

>>> waits = []
>>> outage = Outage(clock=lambda: 0.0, sleep=waits.append, initial=0.5, maximum=2.0)
>>> for _ in range(4):
...     outage.failed(RuntimeError("broker away"))
>>> outage.next_wait, outage.attempts
(2.0, 4)
>>> outage.over()
>>> outage.active
False
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from confluent_kafka import KafkaException

from driftline.kafka import QueueFull
from driftline.kafka_retry import RetriesExhausted, is_retriable
from driftline.transport import Sink
from stream_processors.runners.exceptions import DeliveryError

__all__ = ["Outage", "passing", "send_patiently"]

log = logging.getLogger(__name__)


def passing(exc: BaseException) -> bool:
    """Whether ``exc`` says the broker is away (retry later) rather than that outputs were lost or
    the input is bad (stop)."""
    if isinstance(exc, DeliveryError):
        return exc.failed == 0
    if isinstance(exc, RetriesExhausted):
        return True
    return isinstance(exc, KafkaException) and is_retriable(exc)


class Outage:
    """The retries of one outage: the first :meth:`failed` starts it, each next one doubles the wait
    (``initial`` up to ``maximum`` s), :meth:`over` ends it and says how long it lasted."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        initial: float = 0.5,
        maximum: float = 10.0,
    ) -> None:
        if not 0 < initial <= maximum:
            raise ValueError(f"need 0 < initial <= maximum, got initial={initial}, maximum={maximum}")
        self._clock, self._sleep = clock, sleep
        self.initial, self.maximum = initial, maximum
        self.active = False
        self.attempts = 0
        self.next_wait = initial
        self._since = self._retry_at = 0.0

    def failed(self, exc: BaseException) -> None:
        """Note a failed try; the next one is due after the current wait, which then doubles."""
        now = self._clock()
        if not self.active:
            self.active, self._since, self.next_wait = True, now, self.initial
        self.attempts += 1
        log.warning(
            "broker unreachable (%s): outputs kept, offsets not committed; try %d again in %.1f s",
            exc,
            self.attempts,
            self.next_wait,
        )
        self._retry_at = now + self.next_wait
        self.next_wait = min(self.maximum, self.next_wait * 2)

    def wait(self, timeout: float) -> bool:
        """Sleep until the next try is due, at most ``timeout`` s; whether it is due now."""
        left = self._retry_at - self._clock()
        if left > 0:
            self._sleep(min(left, max(timeout, 0.0)))
        return self._retry_at - self._clock() <= 0

    def over(self) -> None:
        if self.active:
            log.warning(
                "broker reachable again after %.1f s and %d tries: outputs delivered, offsets committed",
                self._clock() - self._since,
                self.attempts,
            )
        self.active, self.attempts, self.next_wait = False, 0, self.initial


def send_patiently(sink: Sink, messages: Iterable[tuple[str, bytes | None, bytes, float | None]]) -> None:
    """Send every message; one that finds the producer's queue full for the sink's whole blocking
    time (:class:`~driftline.kafka.QueueFull`: the broker away) is sent again until there is room --
    never dropped, and the runner never stops with a batch half sent."""
    send = sink.send
    for topic, key, value, ts in messages:
        while True:
            try:
                send(topic, key, value, ts)
                break
            except QueueFull as exc:
                log.warning("%s; still waiting for room (nothing is dropped)", exc)
