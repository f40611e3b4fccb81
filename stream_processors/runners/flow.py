"""Flow control between the two input topics: neither is read far ahead of the other.

The join merges predictions and labels in event time (:mod:`stream_processors.core.join`): an event
waits unmerged until the other topic is read past it. librdkafka fetches each topic on its own, so
one can run ahead -- labels, smaller, were read ~400,000 ahead of their predictions in a 5M-event
run, and the processor's RSS rose from 190 MB to 1.1 GB before the predictions caught up (the join's
only bound was ``max_pending``, 1M per input). :class:`InputFlow` pauses a topic's partition in the
consumer once :data:`HIGH` of its events wait there, and resumes it at half that: what would have
waited in memory waits in Kafka. The merge order, hence every output, is unchanged; and a paused topic
never stalls the other, since it is paused only while the other has nothing left to merge with it.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

__all__ = ["HIGH", "InputFlow"]

log = logging.getLogger(__name__)

HIGH = 20_000
"""Events of one input waiting for the other, per input partition, at which that input is paused."""


class Pausable(Protocol):
    def pause(self, keys: list[tuple[str, int]]) -> None: ...

    def resume(self, keys: list[tuple[str, int]]) -> None: ...


class InputFlow:
    """Pauses and resumes the input partitions of ``consumer`` by what waits in the join of ``core``
    (a :class:`~stream_processors.core.processor.ProcessorCore`): :meth:`update` after each batch."""

    def __init__(self, consumer: Pausable, core: Any, high: int = HIGH) -> None:
        self.consumer, self.core, self.high = consumer, core, high
        self.paused: set[tuple[str, int]] = set()
        self.pauses = 0  # how many times an input was paused (a gauge of how uneven the inputs are)

    def update(self) -> None:
        t_pred, t_label = self.core.topics.predictions, self.core.topics.labels
        owned = set(self.core.partition_of.values())
        pause, resume = [], [k for k in self.paused if k[1] not in owned]  # released: nothing waits
        for p in owned:
            preds, labels = self.core.unmerged(p)
            for key, n in (((t_pred, p), preds), ((t_label, p), labels)):
                if n > self.high and key not in self.paused:
                    pause.append(key)
                elif n <= self.high // 2 and key in self.paused:
                    resume.append(key)
        if pause:
            self.consumer.pause(pause)
            self.paused.update(pause)
            self.pauses += len(pause)
            log.debug("inputs %s paused: over %d events wait for the other input", pause, self.high)
        if resume:
            self.paused.difference_update(resume)
            try:
                self.consumer.resume(resume)
            except Exception as exc:  # a partition no longer assigned: nothing to resume
                log.debug("resuming %s: %s", resume, exc)
