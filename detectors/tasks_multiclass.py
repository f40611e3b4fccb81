"""Multiclass classification: one class out of several, with a probability per class."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ._classification import Classification
from .metrics_tasks import RollingMulticlassMetrics
from .performance import TopClassAccuracy

__all__ = ["MulticlassClassification"]


@dataclass(frozen=True, slots=True)
class MulticlassClassification(Classification):
    """A classifier choosing one of several classes; a prediction's ``score`` is its top-class
    probability (derived from ``Prediction.probabilities`` when only those are sent).

    - error stream: 1.0 for a wrong prediction (the concept-drift detector reads it, as for binary);
      per-class recall (each class's own error stream) in the rolling metrics
    - metrics: accuracy (the headline), macro-F1, ``recall_<class>``
    - label-free estimate: expected accuracy = mean calibrated top-class probability
      (:class:`~detectors.performance.TopClassAccuracy`)
    - ``serve``: the class of ``predict_proba``'s largest column (named by ``model.classes_``), and its
      probability as the score

    >>> import numpy as np
    >>> task = MulticlassClassification()
    >>> task.errors(["a", "b", "c"], ["a", "c", "c"]).tolist()
    [0.0, 1.0, 0.0]
    >>> class Model:
    ...     classes_ = np.array(["cat", "dog", "fox"])
    ...     def predict_proba(self, X):
    ...         return np.array([[0.2, 0.7, 0.1], [0.5, 0.2, 0.3]])
    >>> pred, score = task.serve(Model(), [[0.0], [1.0]])
    >>> pred.tolist(), score.tolist()
    (['dog', 'cat'], [0.7, 0.5])
    """

    @property
    def name(self) -> str:
        return "multiclass"

    def rolling_metrics(self, window: int) -> RollingMulticlassMetrics:
        return RollingMulticlassMetrics(window)

    def label_free_estimate(self, window: int) -> TopClassAccuracy:
        return TopClassAccuracy(window_size=window)

    def serve(self, model: Any, X: Any) -> tuple[np.ndarray, np.ndarray]:
        proba = np.asarray(model.predict_proba(X), dtype=float)
        top = proba.argmax(axis=1)
        classes = getattr(model, "classes_", None)
        prediction = top if classes is None else np.asarray(classes)[top]
        return prediction, proba[np.arange(top.size), top]
