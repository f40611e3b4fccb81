"""Regression: a predicted number against the number that happened."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .metrics_tasks import RollingRegressionMetrics, _floats
from .performance import NoEstimate

__all__ = ["Regression"]


@dataclass(frozen=True, slots=True)
class Regression:
    """A model predicting a number; the label is the number observed.

    - error stream: the absolute residual ``|y_true - y_pred|`` (its rolling mean is the MAE), read by
      ``residual_cusum`` (:class:`~detectors.residual_cusum.ResidualCUSUM`): a CUSUM on normal scores
      against a reference window of residuals, which keeps its false-alarm budget whatever the
      residuals' distribution (a Gaussian CUSUM or ADWIN on raw residuals does not: heavy-tailed
      residuals give them 10-100x their budget, ``benchmarks/detection_tasks.py``)
    - metrics: MAE (the headline; lower is better) and RMSE
    - performance floor: ``performance_drop`` is a *fraction of the baseline MAE* (``relative_drop``):
      0.1 alerts when the rolling MAE exceeds the baseline by 10% -- and by more than the windows'
      sampling noise at the model's false-alarm budget (see
      :class:`~stream_processors.core.performance_floor.PerformanceFloor`)
    - no label-free estimate (:class:`~detectors.performance.NoEstimate`)
    - ``validation_score``: MAE; ``serve``: ``model.predict(X)``, scores NaN

    >>> import numpy as np
    >>> task = Regression()
    >>> task.errors([1.0, 2.0, 3.0], [1.5, 2.0, 1.0]).tolist()
    [0.5, 0.0, 2.0]
    >>> task.validation_score(np.array([1.0, 2.0, 3.0]), np.array([1.5, 2.0, 1.0]))
    0.8333333333333334
    >>> task.higher_is_better, task.metric, task.error_detector
    (False, 'mae', ('residual_cusum', {}))
    """

    tolerance: float = 0.0  # |residual| <= tolerance counts as "correct" (correct() only)

    @property
    def name(self) -> str:
        return "regression"

    @property
    def metric(self) -> str:
        return "mae"

    @property
    def higher_is_better(self) -> bool:
        return False

    @property
    def relative_drop(self) -> bool:
        return True

    @property
    def error_detector(self) -> tuple[str, dict[str, Any]]:
        return "residual_cusum", {}

    def errors(self, y_true: Any, y_pred: Any) -> np.ndarray:
        return np.abs(_floats(y_true) - _floats(y_pred))

    def correct(self, y_true: Any, y_pred: Any) -> np.ndarray:
        return self.errors(y_true, y_pred) <= self.tolerance

    def rolling_metrics(self, window: int) -> RollingRegressionMetrics:
        return RollingRegressionMetrics(window)

    def label_free_estimate(self, window: int) -> NoEstimate:
        return NoEstimate()

    def validation_score(self, y_true: Any, y_pred: Any) -> float:
        return float(np.mean(self.errors(y_true, y_pred)))

    def serve(self, model: Any, X: Any) -> tuple[np.ndarray, np.ndarray]:
        prediction = np.asarray(model.predict(X), dtype=float).ravel()
        return prediction, np.full(prediction.size, np.nan)
