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
from scipy import stats
from sklearn.base import clone

from detectors.tasks import Task
from driftline.config import RetrainSettings
from driftline.contracts import Scored
from retrain_worker.evidence import Evidence, paired_evidence, proportion_bounds

__all__ = ["Fit", "Trainer", "fit_and_validate", "level_bounds", "refit_clone", "window"]

Trainer = Callable[[Any, pd.DataFrame, np.ndarray], Any]


def refit_clone(champion: Any, X: pd.DataFrame, y: np.ndarray) -> Any:
    """Default trainer: an unfitted clone of the champion, fitted on the new window."""
    return clone(champion).fit(X, y)


@dataclass(frozen=True)
class Fit:
    """A challenger, how it and the champion scored on the holdout (with the paired evidence), whether
    it wins, why, and the two windows."""

    challenger: Any
    metrics: dict[str, float]
    wins: bool
    trained_on: dict[str, Any]
    validated_on: dict[str, Any]
    reason: str = ""
    evidence: Evidence | None = None


def fit_and_validate(
    champion: Any,
    rows: list[Scored],
    settings: RetrainSettings,
    task: Task,
    trainer: Trainer,
    features: list[str] | None = None,
) -> Fit:
    """Train on the first ``1 - holdout_fraction`` of ``rows`` (time-ordered), validate both models
    on the rest; the challenger wins only if its paired improvement clears ``min_improvement`` and
    its one-sided lower bound at ``confidence`` clears zero (:mod:`retrain_worker.evidence`): a few
    hundred holdout rows won by chance do not replace a champion. ``features``: the columns both
    models see, in this order (a model's declared features); None: every feature the events carry.

    Recorded metrics: both scores, each with its ``*_ci_low``/``*_ci_high`` (the bounds a rollback
    later compares live scores with), the difference with its bounds, and the holdout's sizes."""
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
    new, old = challenger.predict(X_val), champion.predict(X_val)
    ev = paired_evidence(task, y_val, champion=old, challenger=new, confidence=settings.confidence)
    metrics = {
        f"challenger_{task.metric}": ev.challenger,
        f"champion_{task.metric}": ev.champion,
        "n_train": float(cut),
        "n_validation": float(len(rows) - cut),
        **level_bounds(task, "challenger", ev.challenger, y_val, new, ev.confidence),
        **level_bounds(task, "champion", ev.champion, y_val, old, ev.confidence),
        **ev.metrics(),
    }
    wins = ev.clears(settings.min_improvement)
    verdict = "challenger beat champion" if wins else "challenger did not beat champion"
    if not wins and ev.low <= 0 < ev.difference:
        verdict += " with confidence"
    elif not wins and ev.difference > 0:
        verdict += f" by min_improvement {settings.min_improvement:g}"
    reason = f"{verdict}: {ev.reason('challenger', 'champion')}"
    return Fit(challenger, metrics, wins, window(rows[:cut]), window(rows[cut:]), reason, ev)


def level_bounds(
    task: Task, who: str, score: float, y: Any, predicted: Any, confidence: float
) -> dict[str, float]:
    """``<who>_<metric>_ci_low/_ci_high``: one-sided bounds of one model's own holdout score
    (accuracy: Clopper-Pearson; MAE: a normal bound from the absolute errors' spread, whose
    ``<who>_<metric>_sd`` is recorded too, so a live MAE can be bounded the same way)."""
    m, n = f"{who}_{task.metric}", len(y)
    if task.higher_is_better:
        low, high = proportion_bounds(int(round(score * n)), n, confidence)
        return {f"{m}_ci_low": low, f"{m}_ci_high": high}
    sd = float(np.std(task.errors(y, predicted), ddof=1)) if n > 1 else 0.0
    half = float(stats.norm.ppf(confidence)) * sd / max(n, 1) ** 0.5
    return {f"{m}_ci_low": score - half, f"{m}_ci_high": score + half, f"{m}_sd": sd}


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
