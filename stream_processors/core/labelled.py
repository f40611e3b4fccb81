"""A version's newly labelled predictions as columns, and the alerts raised on the labelled stream.

Labels arrive out of prediction order. An alarm raised at a labelled row is placed at the newest
prediction whose label had arrived by then (``at``), so alerts on the labelled stream point at a
stream position that only grows.

>>> from driftline.contracts import Prediction, Scored
>>> def scored(i, label):
...     p = Prediction(prediction_id=str(i), model="m", model_version="1", event_time=float(i),
...                    features={}, prediction=1, score=0.9)
...     return Scored(prediction=p, label=label, label_time=i + 5.0, index=i)
>>> batch = LabelledBatch.of([scored(7, 1), scored(3, "1"), scored(9, 0)], newest_before=5)
>>> batch.y_true.tolist(), batch.at.tolist(), batch.label_time(1)
([1, '1', 0], [7, 7, 9], 8.0)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np

from driftline.contracts import Alert, AlertType, Scored, Window, alert_id_for

__all__ = ["AlertContext", "LabelledBatch", "labelled_alert", "with_change"]


@dataclass(frozen=True, slots=True)
class LabelledBatch:
    """Columns of one version's labelled predictions, in the order they were joined."""

    y_true: np.ndarray  # labels, as given (object)
    y_pred: np.ndarray  # predictions, as given (object)
    scores: np.ndarray  # prediction scores, NaN where missing
    index: np.ndarray  # the predictions' arrival indices
    time: np.ndarray  # the predictions' event times
    at: np.ndarray  # the newest prediction index labelled by each row
    rows: Sequence[Scored]

    @classmethod
    def of(cls, scored: Sequence[Scored], newest_before: int = -1) -> LabelledBatch:
        n = len(scored)
        y_true = np.empty(n, dtype=object)
        y_true[:] = [s.label for s in scored]
        y_pred = np.empty(n, dtype=object)
        y_pred[:] = [s.prediction.prediction for s in scored]
        scores = np.array([np.nan if s.prediction.score is None else s.prediction.score for s in scored])
        index = np.fromiter((s.index for s in scored), np.int64, n)
        time = np.fromiter((s.prediction.event_time for s in scored), float, n)
        at = np.maximum.accumulate(np.maximum(index, newest_before))
        return cls(y_true, y_pred, scores, index, time, at, scored)

    def __len__(self) -> int:
        return len(self.rows)

    def label_time(self, k: int) -> float:
        return self.rows[k].label_time


@dataclass(frozen=True, slots=True)
class AlertContext:
    """What every alert on the labelled stream reports: the rolling metrics' window, and a note
    (the performance baseline and how many labelled predictions the window holds)."""

    window: Window
    note: str


def labelled_alert(
    model: str,
    version: str,
    kind: AlertType,
    at: int,
    time: float,
    statistic: str,
    value: float,
    threshold: float,
    what: str,
    context: Callable[[], AlertContext],
) -> Alert:
    """A critical alert raised at stream position ``at``; ``what`` starts the message."""
    ctx = context()
    return Alert(
        alert_id=alert_id_for(model, version, kind, at),
        type=kind,
        model=model,
        model_version=version,
        feature=None,
        statistic=statistic,
        value=float(value),
        threshold=float(threshold),
        window=ctx.window,
        detected_at_index=at,
        detected_at_time=time,
        severity="critical",
        message=f"{what}{ctx.note}",
    )


def with_change(alert: Alert, before: float, after: float, **fields: Any) -> Alert:
    """``alert`` stating a change from ``before`` to ``after``: its effect (the difference) and direction."""
    return msgspec.structs.replace(
        alert,
        before=before,
        after=after,
        effect=after - before,
        direction="increase" if after >= before else "decrease",
        **fields,
    )
