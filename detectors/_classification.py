"""What binary and multiclass classification share: a prediction is right when it equals its label,
the error stream is 1.0 for a wrong one, the headline is accuracy (higher is better, an absolute
drop alerts), the error stream goes to the recommended detector, and a holdout is scored by accuracy."""

from __future__ import annotations

from typing import Any

import numpy as np

from .metrics import labels_equal
from .registry import RECOMMENDED_ERROR_DETECTOR, recommended_params

__all__ = ["Classification"]


class Classification:
    """The members of :class:`~detectors.tasks.Task` every classifier task has in common (a base
    with no fields, so the slotted dataclasses deriving from it stay slotted)."""

    __slots__ = ()

    @property
    def metric(self) -> str:
        return "accuracy"

    @property
    def higher_is_better(self) -> bool:
        return True

    @property
    def relative_drop(self) -> bool:
        return False

    @property
    def error_detector(self) -> tuple[str, dict[str, Any]]:
        return RECOMMENDED_ERROR_DETECTOR, recommended_params(RECOMMENDED_ERROR_DETECTOR)

    def correct(self, y_true: Any, y_pred: Any) -> np.ndarray:
        return labels_equal(y_true, y_pred)

    def errors(self, y_true: Any, y_pred: Any) -> np.ndarray:
        return (~self.correct(y_true, y_pred)).astype(float)

    def validation_score(self, y_true: Any, y_pred: Any) -> float:
        return float(np.mean(self.correct(y_true, y_pred)))
