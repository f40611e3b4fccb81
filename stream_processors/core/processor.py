"""The processor core: a batch of records in, scored events, metrics, alerts and dead letters out.

Pure and transport-agnostic: the in-process runner and the Kafka runner both call
:meth:`ProcessorCore.process` with the records they polled and send what it returns. A record
that fails validation goes through one error callback whose default turns it into a
:class:`~driftline.contracts.DeadLetter` (reason + original bytes); the batch goes on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from detectors import get_detector
from driftline.config import MonitorSettings, Topics
from driftline.contracts import (
    Alert,
    DeadLetter,
    Label,
    Metric,
    Prediction,
    Scored,
    decode,
    encode,
    unsafe_feature_names,
)
from driftline.errors import ConfigError, InvalidEvent
from driftline.transport import Record
from stream_processors.core.model_monitor import ModelMonitor, MonitorOutput
from stream_processors.core.version import error_detector_choice

__all__ = ["CoreOutput", "ErrorAction", "ProcessorCore", "dead_letter_all"]

ErrorAction = Literal["dead_letter", "skip", "raise"]
ErrorHandler = Callable[[Exception, Record, str], ErrorAction]


def _check_detector(settings: MonitorSettings) -> None:
    """Fail at start-up, not on the first label, if the error-stream detector is misconfigured."""
    try:
        name, params = error_detector_choice(settings)
        get_detector(name, **params)
    except (ValueError, TypeError, KeyError) as exc:
        chosen = f"{settings.error_detector!r} with params {settings.error_detector_params}"
        raise ConfigError(f"monitor.error_detector={chosen}: {exc}") from None


def dead_letter_all(exc: Exception, record: Record, stage: str) -> ErrorAction:
    """The default error policy: every invalid record goes to the dead-letter topic."""
    return "dead_letter"


@dataclass
class CoreOutput:
    scored: list[Scored] = field(default_factory=list)
    metrics: list[Metric] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)

    def messages(self, topics: Topics) -> list[tuple[str, bytes | None, bytes, float | None]]:
        """(topic, key, value, timestamp) to send, keyed by model so a model's events stay ordered."""
        out: list[tuple[str, bytes | None, bytes, float | None]] = []
        for s in self.scored:
            out.append((topics.scored, s.prediction.model.encode(), encode(s), s.prediction.event_time))
        for m in self.metrics:
            out.append((topics.metrics, m.model.encode(), encode(m), m.window.end_time))
        for a in self.alerts:
            out.append((topics.alerts, a.model.encode(), encode(a), a.detected_at_time))
        for d in self.dead_letters:
            out.append((topics.dlq, None, encode(d), None))
        return out


class ProcessorCore:
    """Joins, monitors and alerts, for every model whose events it is given."""

    def __init__(
        self,
        settings: MonitorSettings,
        topics: Topics,
        on_error: ErrorHandler = dead_letter_all,
    ) -> None:
        _check_detector(settings)
        self.settings = settings
        self.topics = topics
        self.on_error = on_error
        self.models: dict[str, ModelMonitor] = {}
        self.partition_of: dict[str, int] = {}  # input partition each model arrives on
        self.records_seen = 0

    def process(self, records: Sequence[Record]) -> CoreOutput:
        out = CoreOutput()
        preds: dict[str, list[tuple[Prediction, Record]]] = {}
        labels: dict[str, list[Label]] = {}
        t_pred, t_label = self.topics.predictions, self.topics.labels
        for rec in records:
            self.records_seen += 1
            try:
                if rec.topic == t_pred:
                    p = decode(Prediction, rec.value)
                    preds.setdefault(p.model, []).append((p, rec))
                    self.partition_of[p.model] = rec.partition
                elif rec.topic == t_label:
                    lab = decode(Label, rec.value)
                    labels.setdefault(lab.model, []).append(lab)
                    self.partition_of[lab.model] = rec.partition
                else:
                    raise InvalidEvent(
                        f"topic {rec.topic!r} is not an input of the processor "
                        f"(inputs: {t_pred!r}, {t_label!r})"
                    )
            except InvalidEvent as exc:
                self._fail(exc, rec, "decode", out)
        for model, items in preds.items():
            unsafe = unsafe_feature_names([p for p, _ in items])
            if unsafe:
                for pos, reason in unsafe:
                    self._fail(InvalidEvent(f"Prediction: {reason}"), items[pos][1], "validate", out)
                dropped = {pos for pos, _ in unsafe}
                items = [item for pos, item in enumerate(items) if pos not in dropped]
            res = self._monitor(model).on_predictions([p for p, _ in items])
            for pos, reason in res.rejected:
                self._fail(InvalidEvent(f"Prediction: {reason}"), items[pos][1], "validate", out)
            self._collect(res, out)
        for model, labs in labels.items():
            self._collect(self._monitor(model).on_labels(labs), out)
        return out

    # -- state by input partition (for checkpoints and rebalances) -----------------------------
    def models_in(self, partition: int) -> dict[str, ModelMonitor]:
        return {m: mon for m, mon in self.models.items() if self.partition_of.get(m) == partition}

    def adopt(self, partition: int, models: dict[str, ModelMonitor]) -> None:
        """Take over restored state for the models of ``partition``."""
        for model, mon in models.items():
            self.models[model] = mon
            self.partition_of[model] = partition

    def release(self, partition: int) -> None:
        """Forget the models of a partition this instance no longer owns."""
        for model in list(self.models_in(partition)):
            del self.models[model]
            del self.partition_of[model]

    def _monitor(self, model: str) -> ModelMonitor:
        mon = self.models.get(model)
        if mon is None:
            mon = self.models[model] = ModelMonitor(model, self.settings)
        return mon

    @staticmethod
    def _collect(res: MonitorOutput, out: CoreOutput) -> None:
        out.scored += res.scored
        out.metrics += res.metrics
        out.alerts += res.alerts

    def _fail(self, exc: Exception, rec: Record, stage: str, out: CoreOutput) -> None:
        action = self.on_error(exc, rec, stage)
        if action == "raise":
            raise exc
        if action == "dead_letter":
            out.dead_letters.append(DeadLetter.of_record(rec, exc, stage))
