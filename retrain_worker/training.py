"""Refit and validate: a challenger trained on the older part of a labelled window and compared with
the champion on the newest part (a time-ordered holdout). No I/O -- the registry and the broker are
the worker's -- so whatever raises here is the trainer's or the data's fault, and the worker counts
it as a failed attempt.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from detectors.tasks import Task
from driftline.config import RetrainSettings
from driftline.contracts import Scored

__all__ = ["Fit", "Trainer", "fit_and_validate", "refit_clone", "window"]

Trainer = Callable[[Any, pd.DataFrame, np.ndarray], Any]


def refit_clone(champion: Any, X: pd.DataFrame, y: np.ndarray) -> Any:
    """Default trainer: an unfitted clone of the champion, fitted on the new window."""
    return clone(champion).fit(X, y)


@dataclass(frozen=True)
class Fit:
    """A challenger, how it and the champion scored on the holdout, and the two windows."""

    challenger: Any
    metrics: dict[str, float]
    wins: bool
    trained_on: dict[str, Any]
    validated_on: dict[str, Any]


def fit_and_validate(
    champion: Any,
    rows: list[Scored],
    settings: RetrainSettings,
    task: Task,
    trainer: Trainer,
    features: list[str] | None = None,
) -> Fit:
    """Train on the first ``1 - holdout_fraction`` of ``rows`` (time-ordered), validate both models
    on the rest; the challenger wins if it beats the champion by ``min_improvement``. ``features``:
    the columns both models see, in this order (a model's declared features); None: every feature
    the events carry."""
    X = pd.DataFrame([r.prediction.features for r in rows])
    if features is not None:
        missing = [f for f in features if f not in X.columns]
        if missing:
            raise KeyError(f"declared feature(s) {missing} are not in the scored events")
        X = X[features]
    y = np.array([r.label for r in rows])
    cut = int(len(rows) * (1 - settings.holdout_fraction))
    challenger = trainer(champion, X.iloc[:cut], y[:cut])
    X_val, y_val = X.iloc[cut:], y[cut:]
    new = task.validation_score(y_val, challenger.predict(X_val))
    old = task.validation_score(y_val, champion.predict(X_val))
    metrics = {
        f"challenger_{task.metric}": new,
        f"champion_{task.metric}": old,
        "n_train": float(cut),
        "n_validation": float(len(rows) - cut),
    }
    if task.higher_is_better:
        wins = new >= old + settings.min_improvement
    else:
        wins = new <= old - settings.min_improvement
    return Fit(challenger, metrics, bool(wins), window(rows[:cut]), window(rows[cut:]))


def window(rows: list[Scored]) -> dict[str, Any]:
    """The span of ``rows`` as a :class:`~driftline.contracts.Window`'s fields."""
    idx = [r.index for r in rows]
    return {
        "start_index": min(idx),
        "end_index": max(idx) + 1,
        "start_time": rows[0].prediction.event_time,
        "end_time": rows[-1].prediction.event_time,
        "n": len(rows),
    }
