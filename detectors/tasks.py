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
- ``error_detector``: the sequential detector (name, parameters) recommended for the error stream,
  used unless ``monitor.error_detector`` names one; ``relative_drop``: whether the performance floor's
  ``performance_drop`` is a fraction of the baseline (regression's MAE) or an absolute drop (accuracy)

Tasks: :class:`BinaryClassification` (``binary``),
:class:`~detectors.tasks_multiclass.MulticlassClassification` (``multiclass``),
:class:`~detectors.tasks_regression.Regression` (``regression``).

Pure: numpy only; ``serve`` calls the model it is given and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ._classification import Classification
from .exceptions import UnknownNameError
from .metrics import RollingBinaryMetrics, labels_equal
from .performance import ExpectedAccuracy
from .tasks_multiclass import MulticlassClassification
from .tasks_regression import Regression

__all__ = [
    "BinaryClassification",
    "LabelFreeEstimate",
    "MulticlassClassification",
    "Regression",
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

    def headline_se(self) -> float:
        """The standard error of :meth:`headline` over the window (its sampling noise)."""
        ...

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

    @property
    def relative_drop(self) -> bool: ...

    @property
    def error_detector(self) -> tuple[str, dict[str, Any]]: ...

    def correct(self, y_true: Any, y_pred: Any) -> np.ndarray: ...

    def errors(self, y_true: Any, y_pred: Any) -> np.ndarray: ...

    def rolling_metrics(self, window: int) -> RollingMetrics: ...

    def label_free_estimate(self, window: int) -> LabelFreeEstimate: ...

    def validation_score(self, y_true: Any, y_pred: Any) -> float: ...

    def serve(self, model: Any, X: Any) -> tuple[np.ndarray, np.ndarray]: ...


@dataclass(frozen=True, slots=True)
class BinaryClassification(Classification):
    """Two classes; the score is the positive-class probability, the prediction ``score >= threshold``.

    ``positive_class`` (the spec's ``label.positive_class``) is the class the score is the probability
    of; labels equal to it are positives. ``None`` or ``1`` (the default) also read ``True``, ``"yes"``,
    ``"true"`` as positive (:func:`~detectors.metrics.is_positive`). In ``serve`` it picks the
    ``predict_proba`` column by ``model.classes_``.

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
    positive_class: str | int | bool | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold < 1.0:
            raise ValueError(f"threshold must be in (0, 1), got {self.threshold}")

    @property
    def name(self) -> str:
        return "binary"

    def rolling_metrics(self, window: int) -> RollingBinaryMetrics:
        return RollingBinaryMetrics(window, positive_class=self.positive_class)

    def label_free_estimate(self, window: int) -> ExpectedAccuracy:
        return ExpectedAccuracy(window_size=window)

    def serve(self, model: Any, X: Any) -> tuple[np.ndarray, np.ndarray]:
        proba = np.asarray(model.predict_proba(X))
        classes = getattr(model, "classes_", None)
        pc = self.positive_class
        if pc is None or classes is None or len(classes) != 2:
            score = proba[:, 1]
            return (score >= self.threshold).astype(int), score
        col = int(np.flatnonzero(labels_equal(classes, [pc] * 2))[0]) if _has(classes, pc) else 1
        score = proba[:, col]
        return np.where(score >= self.threshold, classes[col], classes[1 - col]), score


def _has(classes: Any, value: Any) -> bool:
    return bool(labels_equal(classes, [value] * len(classes)).any())


TASKS: dict[str, type[Task]] = {
    "binary": BinaryClassification,
    "multiclass": MulticlassClassification,
    "regression": Regression,
}


def available_tasks() -> list[str]:
    return sorted(TASKS)


def get_task(name: str, **params: Any) -> Task:
    """The task called ``name``; unknown names raise :class:`UnknownNameError` listing the valid ones.

    >>> get_task("binary", positive_class="bad")
    BinaryClassification(threshold=0.5, positive_class='bad')
    >>> get_task("regresion")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    detectors.exceptions.UnknownNameError: unknown task 'regresion'; valid names: binary, multiclass, ...
    """
    cls = TASKS.get(name)
    if cls is None:
        raise UnknownNameError("task", name, TASKS)
    return cls(**params)
