"""The embedded API: monitor your own model's predictions and labels in your own process.

:class:`Monitor` drives the same :class:`~stream_processors.core.processor.ProcessorCore` the Kafka
runner drives, with the models of a spec file: hand it predictions and labels (pandas DataFrames or
lists of dicts, columns named per the model's ``columns:``) and it returns the alerts and metrics they
led to. Nothing is sent anywhere; there is no broker, no thread, and the same input always gives
the same output.

>>> import numpy as np, pandas as pd
>>> from driftline.config import DriftlineSettings
>>> from driftline.spec import ModelSpec
>>> rng = np.random.default_rng(0)
>>> n = 6000
>>> income = rng.normal(50.0, 10.0, n)
>>> income[3000:] += 20.0  # the income of new applicants moves from row 3,000 on
>>> preds = pd.DataFrame({"prediction_id": [f"p{i}" for i in range(n)],
...                       "event_time": np.arange(n, dtype=float), "income": income,
...                       "prediction": (income > 55).astype(int), "score": 0.5})
>>> settings = DriftlineSettings(models={"credit": ModelSpec(features={"income": "numeric"},
...                                                          reference={"first": 2000})})
>>> with Monitor(settings) as monitor:
...     found = monitor.observe(preds)
>>> [(a.type, a.feature) for a in found.alerts][:1]
[('data_drift', 'income')]
>>> 3000 < found.alerts[0].detected_at_index < 3200
True
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypeAlias

import msgspec
import numpy as np
import pandas as pd

from driftline.app.embedded_columns import Encoded, as_frame, encode_labels, encode_predictions
from driftline.config import DriftlineSettings
from driftline.contracts import Alert, DeadLetter, Metric
from driftline.errors import DriftlineError
from driftline.transport import Record
from stream_processors.core.processor import CoreOutput, ProcessorCore

__all__ = ["Monitor", "MonitorResult", "detection_order", "in_event_time_order"]

log = logging.getLogger(__name__)
Rows: TypeAlias = "pd.DataFrame | Iterable[Mapping[str, Any]]"
Progress = Callable[[int], None]


@dataclass
class MonitorResult:
    """What some input led to: alerts, metrics, dead letters (rows the core could not take, with the
    reason) and how many predictions were joined with their label."""

    alerts: list[Alert] = field(default_factory=list)
    metrics: list[Metric] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    joined: int = 0

    def add(self, out: CoreOutput) -> None:
        self.alerts += out.alerts
        self.metrics += out.metrics
        self.dead_letters += out.dead_letters
        self.joined += len(out.scored)

    def to_frame(self, what: Literal["alerts", "metrics", "dead_letters"] = "alerts") -> pd.DataFrame:
        """The alerts (or metrics, or dead letters) as a DataFrame, nested fields flattened
        (``window.start_index``...)."""
        rows = msgspec.to_builtins(getattr(self, what))
        return pd.json_normalize(rows) if rows else pd.DataFrame()


class Monitor:
    """Monitors the models of a spec on data you hand it. See the module docstring.

    ``config``: :class:`~driftline.config.DriftlineSettings`, or the path of a spec file (read as
    ``driftline --config`` reads it: the ``DRIFTLINE_*`` environment overrides it). ``model``: which
    model rows without a ``model`` column are for (default: the spec's only model). Versions come from
    the ``model_version`` column, else "1". Every version is monitored (no announcements needed).

    :meth:`observe` and :meth:`label` may be called in any order and any number of times; a label
    is joined with its prediction once the join's clock has moved past it, or at :meth:`flush` (the
    end of the input), which :meth:`close` and the ``with`` block call.
    """

    def __init__(self, config: DriftlineSettings | str | Path | None = None, *, model: str | None = None):
        if not isinstance(config, DriftlineSettings):
            config = DriftlineSettings.load(None if config is None else str(config))
        self.settings = config
        self.model = model
        if model is not None and config.models and model not in config.models:
            raise DriftlineError(f"model {model!r} is not in the spec (models: {', '.join(config.models)})")
        self.core = ProcessorCore(config.monitor, config.topics, models=config.models)
        self.alerts: list[Alert] = []
        self.predictions = self.labels = self.joined = 0
        self.dead_letters: Counter[str] = Counter()
        self._offsets = {"predictions": 0, "labels": 0}
        self.closed = False

    # -- input -------------------------------------------------------------------------------------
    def observe(self, predictions: Rows) -> MonitorResult:
        """Feed predictions: ``prediction_id``, ``event_time``, the features, ``prediction`` and
        ``score`` (or the per-class probability columns), as the model's ``columns:`` name them."""
        return self.process(self.encode_predictions(as_frame(predictions)).records)

    def label(self, labels: Rows) -> MonitorResult:
        """Feed labels: ``prediction_id``, ``event_time`` (when the label became known), ``label``."""
        return self.process(self.encode_labels(as_frame(labels)).records)

    def encode_predictions(self, df: pd.DataFrame) -> Encoded:
        """The events of a predictions table, as records for :meth:`process` (offsets count rows)."""
        enc = encode_predictions(
            df,
            self.settings.topics.predictions,
            self.settings.models,
            self.model,
            self._offsets["predictions"],
        )
        self._offsets["predictions"] += len(df)
        return enc

    def encode_labels(self, df: pd.DataFrame) -> Encoded:
        enc = encode_labels(
            df, self.settings.topics.labels, self.settings.models, self.model, self._offsets["labels"]
        )
        self._offsets["labels"] += len(df)
        return enc

    def process(self, records: list[Record]) -> MonitorResult:
        """Records (from :meth:`encode_predictions` / :meth:`encode_labels`) through the core."""
        if self.closed:
            raise DriftlineError("this Monitor is closed: make a new one to monitor more data")
        topic = self.settings.topics.predictions
        n_pred = sum(1 for r in records if r.topic == topic)
        self.predictions += n_pred
        self.labels += len(records) - n_pred
        return self._account(self.core.process(records))

    def replay(
        self, predictions: Rows, labels: Rows, *, batch: int = 5000, progress: Progress | None = None
    ) -> MonitorResult:
        """Predictions and labels in event-time order (stable: rows with the same time keep their
        table order, predictions before labels), ``batch`` records at a time, then :meth:`flush`.
        Deterministic: the same tables give the same result. ``progress(n)``: n more records done."""
        if batch < 1:
            raise DriftlineError(f"batch must be at least 1 (got {batch})")
        records = in_event_time_order(
            self.encode_predictions(as_frame(predictions)), self.encode_labels(as_frame(labels))
        )
        result = MonitorResult()
        for start in range(0, len(records), batch):
            chunk = records[start : start + batch]
            _merge(result, self.process(chunk))
            if progress is not None:
                progress(len(chunk))
        _merge(result, self.flush())
        result.alerts.sort(key=detection_order)
        return result

    # -- end of input ----------------------------------------------------------------------------
    def flush(self) -> MonitorResult:
        """Join what waits for the other input as if both had ended (end of a file, of a batch job)."""
        return self._account(self.core.drain())

    def close(self) -> MonitorResult:
        """:meth:`flush`, then refuse more input."""
        if self.closed:
            return MonitorResult()
        result = self.flush()
        self.closed = True
        return result

    def __enter__(self) -> Monitor:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- what happened ---------------------------------------------------------------------------
    def _account(self, out: CoreOutput) -> MonitorResult:
        result = MonitorResult()
        result.add(out)
        self.alerts += out.alerts
        self.joined += len(out.scored)
        self.dead_letters.update(_reason(d) for d in out.dead_letters)
        return result

    def undeclared(self) -> dict[str, list[str]]:
        """Per model, the feature columns sent that its spec does not declare (the core logs each
        once, with the fix, and does not monitor them)."""
        return {m: sorted(names) for m, names in sorted(self.core.undeclared().items()) if names}

    def counts(self) -> dict[str, Any]:
        """Everything so far: events in, joined, dead letters by reason, alerts by type, undeclared
        feature columns by model."""
        return {
            "predictions": self.predictions,
            "labels": self.labels,
            "joined": self.joined,
            "dead_letters": sum(self.dead_letters.values()),
            "dead_letters_by_reason": dict(sorted(self.dead_letters.items())),
            "alerts": len(self.alerts),
            "alerts_by_type": dict(sorted(Counter(a.type for a in self.alerts).items())),
            "undeclared_features": self.undeclared(),
        }


def in_event_time_order(predictions: Encoded, labels: Encoded) -> list[Record]:
    """Both tables' records by event time, stable (same time: table order, predictions first); a row
    without a valid time goes last (it is a dead letter anyway)."""
    records = predictions.records + labels.records
    times = np.nan_to_num(np.concatenate([predictions.times, labels.times]), nan=np.inf)
    kind = np.r_[np.zeros(len(predictions.records)), np.ones(len(labels.records))]
    return [records[i] for i in np.lexsort((np.arange(len(records)), kind, times))]


def detection_order(a: Alert) -> tuple[Any, ...]:
    """Alerts as they were detected, whatever batches the input came in (models apart, ids last)."""
    return (a.detected_at_time, a.model, a.detected_at_index, a.type, a.feature or "", a.alert_id)


def _merge(into: MonitorResult, more: MonitorResult) -> None:
    into.alerts += more.alerts
    into.metrics += more.metrics
    into.dead_letters += more.dead_letters
    into.joined += more.joined


def _reason(d: DeadLetter) -> str:
    """A dead letter's reason, short enough to count by."""
    return f"{d.stage}: {d.reason[:160]}"
