"""The client a production service calls to log predictions and labels.

Every call returns at once and never raises into the caller's request path. An event that cannot
be sent is dropped, and every drop is counted truthfully -- in ``stats["dropped"]`` and per reason:

* ``queue_full`` -- the transport's queue is full (the broker is slow or away); the sink says so at
  once instead of waiting (:class:`driftline.transport.Dropped`);
* ``encode_error`` -- the event cannot be built or encoded (a feature value JSON cannot hold);
* ``rejected`` -- the transport can never send it (too large, unknown topic:
  :class:`driftline.transport.RecordRejected`);
* ``delivery_failed`` -- the transport took it but its delivery failed later (Kafka: after librdkafka's
  own retries, ``delivery.timeout.ms``); learned from the sink's delivery reports, so it moves the
  event from ``predictions`` / ``labels`` to ``dropped``.

So ``predictions + labels + dropped`` always equals the events logged. An optional
``on_drop(event, reason)`` callback hears of each drop (``event`` is None when no event could be
built); its own exceptions are swallowed and logged once. With Kafka the client uses
:class:`driftline.kafka.KafkaSink` (idempotent, asynchronous delivery reports); ``close()`` flushes.
Both topics are keyed by model, so one processor instance holds all state of a model.

>>> from driftline.transport import InMemoryBus
>>> bus = InMemoryBus()
>>> client = DriftlineClient(bus.sink(), model="churn", model_version="3")
>>> pid = client.log_prediction({"age": 41.0, "plan": "gold"}, prediction=1, score=0.8, event_time=10.0)
>>> client.log_label(pid, 1, event_time=12.0)
>>> [r.topic for r in bus.log("driftline.predictions") + bus.log("driftline.labels")]
['driftline.predictions', 'driftline.labels']
>>> client.log_prediction({"age": object()}, prediction=1)  # cannot be encoded: dropped, not raised
>>> client.stats["dropped"], client.stats["dropped_by_reason"]["encode_error"]
(1, 1)
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Literal, TypedDict

import msgspec

from driftline.config import Topics
from driftline.contracts import FeatureValue, Label, LabelValue, Prediction, decode, encode
from driftline.errors import InvalidEvent
from driftline.transport import Dropped, ReportsDeliveryFailures, Sink
from producers.shadow import shadow_id

__all__ = ["DROP_REASONS", "ClientStats", "DriftlineClient", "DropReason", "OnDrop"]

log = logging.getLogger(__name__)

DropReason = Literal["queue_full", "encode_error", "rejected", "delivery_failed"]
DROP_REASONS: tuple[DropReason, ...] = ("queue_full", "encode_error", "rejected", "delivery_failed")
OnDrop = Callable[[Prediction | Label | None, DropReason], None]
MAX_SHADOWED = 100_000  # shadow predictions whose label the client still expects


class ClientStats(TypedDict):
    """A snapshot: events taken by the transport and not known lost, and drops (total, per reason)."""

    predictions: int
    labels: int
    dropped: int
    dropped_by_reason: dict[str, int]


class DriftlineClient:
    def __init__(
        self,
        sink: Sink,
        *,
        model: str,
        model_version: str,
        topics: Topics | None = None,
        on_drop: OnDrop | None = None,
    ) -> None:
        if not model:
            raise ValueError("model must be a non-empty model name")
        self.sink = sink
        self.model = model
        self.model_version = model_version
        self.topics = topics or Topics()
        self.on_drop = on_drop
        self._key = model.encode()
        self._lock = threading.Lock()  # services log from many threads; counts must add up
        self._counts = {"predictions": 0, "labels": 0, "dropped": 0}
        self._by_reason: dict[str, int] = dict.fromkeys(DROP_REASONS, 0)
        self._callback_failed = False
        self._shadowed: dict[str, None] = {}  # ids with a shadow prediction, awaiting their label (bounded)
        if isinstance(sink, ReportsDeliveryFailures):
            sink.add_failure_listener(self._delivery_failed)

    @property
    def stats(self) -> ClientStats:
        """A fresh copy each time: changing it changes nothing in the client."""
        with self._lock:
            c = self._counts
            return ClientStats(
                predictions=c["predictions"],
                labels=c["labels"],
                dropped=c["dropped"],
                dropped_by_reason=dict(self._by_reason),
            )

    def log_prediction(
        self,
        features: Mapping[str, FeatureValue],
        prediction: LabelValue,
        *,
        score: float | None = None,
        prediction_id: str | None = None,
        event_time: float | None = None,
    ) -> str | None:
        """Log one prediction; returns its id (pass it to :meth:`log_label`), or None if dropped."""
        try:
            pid = prediction_id or uuid.uuid4().hex
            event = Prediction(
                prediction_id=pid,
                model=self.model,
                model_version=self.model_version,
                event_time=time.time() if event_time is None else event_time,
                features=dict(features),
                prediction=prediction,
                score=score,
            )
        except Exception as exc:  # never break the caller
            self._drop(None, "encode_error", exc)
            return None
        return pid if self.emit(event) else None

    def log_label(self, prediction_id: str, label: LabelValue, *, event_time: float | None = None) -> None:
        """Log the ground truth for a prediction logged earlier (dropped and counted if it cannot be sent)."""
        try:
            event = Label(
                prediction_id=prediction_id,
                model=self.model,
                label=label,
                event_time=time.time() if event_time is None else event_time,
            )
        except Exception as exc:
            self._drop(None, "encode_error", exc)
            return
        self.emit(event)

    def log_shadow(
        self, prediction: Prediction, version: str, shadow: LabelValue, score: float | None
    ) -> bool:
        """Log a challenger's answer to a request the champion answered (``prediction``, as logged) as
        a shadow prediction (:mod:`producers.shadow`); the request's label is sent for it too."""
        try:
            event = msgspec.structs.replace(
                prediction,
                prediction_id=shadow_id(prediction.prediction_id),
                model_version=version,
                prediction=shadow,
                score=score,
                probabilities=None,
            )
        except Exception as exc:
            self._drop(None, "encode_error", exc)
            return False
        if len(self._shadowed) >= MAX_SHADOWED:
            self._shadowed.pop(next(iter(self._shadowed)))  # the oldest: its label is long overdue
        self._shadowed[prediction.prediction_id] = None
        return self.emit(event)

    def emit(self, event: Prediction | Label) -> bool:
        """Send a ready-made event (the simulator's path). Returns False if it was dropped."""
        try:
            value = encode(event)
            is_prediction = isinstance(event, Prediction)
            topic = self.topics.predictions if is_prediction else self.topics.labels
            timestamp = event.event_time
        except Exception as exc:
            self._drop(event, "encode_error", exc)
            return False
        try:
            self.sink.send(topic, self._key, value, timestamp)
        except Dropped as exc:
            self._drop(event, "queue_full", exc)
            return False
        except Exception as exc:  # RecordRejected, or anything else a sink raises: it did not take it
            self._drop(event, "rejected", exc)
            return False
        with self._lock:
            self._counts["predictions" if is_prediction else "labels"] += 1
        if self._shadowed and not is_prediction and event.prediction_id in self._shadowed:
            self._shadowed.pop(event.prediction_id, None)  # its shadow prediction gets the same label
            self.emit(msgspec.structs.replace(event, prediction_id=shadow_id(event.prediction_id)))
        return True

    def _delivery_failed(self, topic: str, key: bytes | None, value: bytes | None, reason: str) -> None:
        """The sink's delivery report: an event it had taken is lost after all. Records of other
        models on a shared sink are not ours to count (give each client of one model its own sink)."""
        if key != self._key or topic not in (self.topics.predictions, self.topics.labels):
            return
        kind: type[Prediction] | type[Label] = Prediction if topic == self.topics.predictions else Label
        try:
            event: Prediction | Label | None = decode(kind, value or b"")
        except InvalidEvent:
            event = None
        with self._lock:
            self._counts["predictions" if kind is Prediction else "labels"] -= 1
        self._drop(event, "delivery_failed", RuntimeError(reason))

    def _drop(self, event: Prediction | Label | None, reason: DropReason, exc: BaseException) -> None:
        with self._lock:
            self._counts["dropped"] += 1
            n = self._by_reason[reason] = self._by_reason[reason] + 1
        if n in (1, 10, 100, 1000) or n % 10_000 == 0:  # a dead broker must not flood the service's log
            kind = "event" if event is None else type(event).__name__.lower()
            log.warning("driftline: dropped a %s (%s; %d so far for this reason): %s", kind, reason, n, exc)
        if self.on_drop is None:
            return
        try:
            self.on_drop(event, reason)
        except Exception:  # the callback is the service's code: it never breaks the caller either
            if not self._callback_failed:
                self._callback_failed = True
                log.exception("driftline: the on_drop callback raised (logged once, then ignored)")

    def flush(self, timeout: float = 10.0) -> int:
        """Wait up to ``timeout`` s for queued events; returns how many are still queued (-1: failed)."""
        try:
            return self.sink.flush(timeout)
        except Exception as exc:
            log.warning("driftline: flush failed: %s", exc)
            return -1

    def close(self) -> None:
        self.flush()
