"""What a model predicts, as a strategy: what "correct" means, which metrics judge it, how it serves.

A :class:`Task` owns everything that differs between binary classification, multiclass and
regression, so that a new kind of model is one new class here and one line in :data:`TASKS`:

- ``correct(y_true, y_pred)`` and ``errors(y_true, y_pred)``: per prediction, vectorised; the error
  stream is what the sequential (concept-drift) detector reads
- ``rolling_metrics(window)``: the metrics over the last labelled predictions (update / revert / get),
  whose ``headline()`` is ``metric`` -- the value the performance floor watches
- ``label_free_estimate(window)``: the estimate of ``metric`` from scores alone, while labels are missing
- ``validation_score(y_true, y_pred)``: ``metric`` on a holdout, comparing champion and challenger
- ``serve(model, X)``: a fitted model's output turned into (prediction, score) arrays

Pure: numpy only; ``serve`` calls the model it is given and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .exceptions import UnknownNameError
from .metrics import RollingBinaryMetrics, labels_equal
from .performance import ExpectedAccuracy

__all__ = [
    "BinaryClassification",
    "LabelFreeEstimate",
    "RollingMetrics",
    "TASKS",
    "Task",
    "available_tasks",
    "get_task",
]


class RollingMetrics(Protocol):
    """Metrics over the last ``window`` labelled predictions."""

    window: int
    n: int  # events in the window

    def update(
        self,
        y_true: Any,
        y_pred: Any,
        y_score: Any,
        index: np.ndarray | None = None,
        time: np.ndarray | None = None,
    ) -> None: ...

    def revert(self, n: int = 1) -> None: ...

    def get(self) -> dict[str, float]: ...

    def headline(self) -> float: ...

    def span(self) -> tuple[int, int, float, float]: ...

    def window_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(scores, targets) of the window: what :meth:`LabelFreeEstimate.fit` calibrates on."""
        ...


class LabelFreeEstimate(Protocol):
    """An estimate of the task's metric over the newest predictions, from their scores alone."""

    @property
    def name(self) -> str: ...

    def fit(self, scores: Any, targets: Any) -> Any: ...

    def update(self, scores: Any) -> None: ...

    def revert(self, n: int = 1) -> None: ...

    def get(self) -> float: ...


class Task(Protocol):
    """What a model predicts; see the module docstring."""

    @property
    def name(self) -> str: ...

    @property
    def metric(self) -> str:
        """The headline metric's name (e.g. ``"accuracy"``)."""
        ...

    @property
    def higher_is_better(self) -> bool: ...

    def correct(self, y_true: Any, y_pred: Any) -> np.ndarray: ...

    def errors(self, y_true: Any, y_pred: Any) -> np.ndarray: ...

    def rolling_metrics(self, window: int) -> RollingMetrics: ...

    def label_free_estimate(self, window: int) -> LabelFreeEstimate: ...

    def validation_score(self, y_true: Any, y_pred: Any) -> float: ...

    def serve(self, model: Any, X: Any) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass(frozen=True, slots=True)
class BinaryClassification:
    """Two classes; the score is the positive-class probability, the prediction ``score >= threshold``.

    A prediction is correct when it equals its label (``1`` and ``"1"`` count as equal); the error
    stream is 1.0 for a wrong prediction and 0.0 for a right one; the headline metric is accuracy;
    the label-free estimate is :class:`~detectors.ExpectedAccuracy`.

    >>> import numpy as np
    >>> task = BinaryClassification()
    >>> task.correct([1, 0, "1", 1], [1, 1, 1, 0]).tolist()
    [True, False, True, False]
    >>> task.errors([1, 0, "1", 1], [1, 1, 1, 0]).tolist()
    [0.0, 1.0, 0.0, 1.0]
    >>> task.validation_score(np.array([1, 0, 1, 1]), np.array([1, 0, 0, 1]))
    0.75
    >>> rng = np.random.default_rng(0)
    >>> class Model:  # any fitted classifier with predict_proba
    ...     def predict_proba(self, X):
    ...         p = rng.random(len(X))
    ...         return np.column_stack([1 - p, p])
    >>> pred, score = task.serve(Model(), [[0.0]] * 4)
    >>> pred.tolist(), score.round(2).tolist()
    ([1, 0, 0, 0], [0.64, 0.27, 0.04, 0.02])
    """

    threshold: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")

    @property
    def name(self) -> str:
        return "binary"

    @property
    def metric(self) -> str:
        return "accuracy"

    @property
    def higher_is_better(self) -> bool:
        return True

    def correct(self, y_true: Any, y_pred: Any) -> np.ndarray:
        return labels_equal(y_true, y_pred)

    def errors(self, y_true: Any, y_pred: Any) -> np.ndarray:
        return (~self.correct(y_true, y_pred)).astype(float)

    def rolling_metrics(self, window: int) -> RollingBinaryMetrics:
        return RollingBinaryMetrics(window)

    def label_free_estimate(self, window: int) -> ExpectedAccuracy:
        return ExpectedAccuracy(window_size=window)

    def validation_score(self, y_true: Any, y_pred: Any) -> float:
        return float(np.mean(self.correct(y_true, y_pred)))

    def serve(self, model: Any, X: Any) -> tuple[np.ndarray, np.ndarray]:
        score = np.asarray(model.predict_proba(X))[:, 1]
        return (score >= self.threshold).astype(int), score


TASKS: dict[str, type[Task]] = {"binary": BinaryClassification}


def available_tasks() -> list[str]:
    return sorted(TASKS)


def get_task(name: str, **params: Any) -> Task:
    """The task called ``name``; unknown names raise :class:`UnknownNameError` listing the valid ones.

    >>> get_task("binary")
    BinaryClassification(threshold=0.5)
    >>> get_task("regresion")
    Traceback (most recent call last):
    ...
    detectors.exceptions.UnknownNameError: unknown task 'regresion'; valid names: binary
    """
    cls = TASKS.get(name)
    if cls is None:
        raise UnknownNameError("task", name, TASKS)
    return cls(**params)
