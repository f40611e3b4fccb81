"""The client a production service calls to log predictions and labels.

It never raises into, and never blocks, the caller's request path: encoding or transport
errors are counted and logged, not thrown. With Kafka it uses an idempotent producer with
asynchronous delivery callbacks (:class:`driftline.kafka.KafkaSink`); ``close()`` flushes.
Both topics are keyed by model, so one processor instance holds all state of a model.

>>> from driftline.transport import InMemoryBus
>>> bus = InMemoryBus()
>>> client = DriftlineClient(bus.sink(), model="churn", model_version="3")
>>> pid = client.log_prediction({"age": 41.0, "plan": "gold"}, prediction=1, score=0.8, event_time=10.0)
>>> client.log_label(pid, 1, event_time=12.0)
>>> [r.topic for r in bus.log("driftline.predictions") + bus.log("driftline.labels")]
['driftline.predictions', 'driftline.labels']
>>> client.log_prediction({"age": object()}, prediction=1)  # cannot be encoded: dropped, not raised
>>> client.stats["dropped"]
1
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping

from driftline.config import Topics
from driftline.contracts import FeatureValue, Label, LabelValue, Prediction, encode
from driftline.transport import Sink

__all__ = ["DriftlineClient"]

log = logging.getLogger(__name__)


class DriftlineClient:
    def __init__(self, sink: Sink, *, model: str, model_version: str, topics: Topics | None = None) -> None:
        if not model:
            raise ValueError("model must be a non-empty model name")
        self.sink = sink
        self.model = model
        self.model_version = model_version
        self.topics = topics or Topics()
        self._key = model.encode()
        self.stats = {"predictions": 0, "labels": 0, "dropped": 0}

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
            return pid if self.emit(event) else None
        except Exception as exc:  # never break the caller
            self._drop("prediction", exc)
            return None

    def log_label(self, prediction_id: str, label: LabelValue, *, event_time: float | None = None) -> None:
        try:
            self.emit(
                Label(
                    prediction_id=prediction_id,
                    model=self.model,
                    label=label,
                    event_time=time.time() if event_time is None else event_time,
                )
            )
        except Exception as exc:
            self._drop("label", exc)

    def emit(self, event: Prediction | Label) -> bool:
        """Send a ready-made event (the simulator's path). Returns False if it was dropped."""
        try:
            value = encode(event)
            if isinstance(event, Prediction):
                self.sink.send(self.topics.predictions, self._key, value, event.event_time)
                self.stats["predictions"] += 1
            else:
                self.sink.send(self.topics.labels, self._key, value, event.event_time)
                self.stats["labels"] += 1
            return True
        except Exception as exc:
            self._drop(type(event).__name__.lower(), exc)
            return False

    def _drop(self, what: str, exc: Exception) -> None:
        self.stats["dropped"] += 1
        log.warning("driftline: dropped a %s event: %s", what, exc)

    def flush(self, timeout: float = 10.0) -> int:
        try:
            return self.sink.flush(timeout)
        except Exception as exc:
            log.warning("driftline: flush failed: %s", exc)
            return -1

    def close(self) -> None:
        self.flush()
