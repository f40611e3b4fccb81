"""Everything monitored about one model version, composed from parts that each do one job.

- predictions: feature and prediction drift (:mod:`~stream_processors.core.feature_drift`) and the
  label-free estimate (:mod:`~stream_processors.core.label_free`)
- labelled predictions: the task's error stream (:mod:`~stream_processors.core.concept_drift`), the
  rolling metrics with their floor (:mod:`~stream_processors.core.performance_floor`) and the metrics
  published (:mod:`~stream_processors.core.emission`)

What differs between binary classification, multiclass and regression comes from the
:class:`~detectors.tasks.Task`.

>>> import numpy as np
>>> from detectors import get_task
>>> from driftline.config import MonitorSettings
>>> from driftline.contracts import Prediction, Scored
>>> rng = np.random.default_rng(0)
>>> settings = MonitorSettings(performance_window=100, metrics_every=100)
>>> monitor = VersionMonitor("churn", "1", {"x": "numeric"}, settings, get_task("binary"))
>>> def scored(i, right):
...     p = Prediction(prediction_id=str(i), model="churn", model_version="1", event_time=float(i),
...                    features={"x": 0.0}, prediction=1, score=0.9)
...     return Scored(prediction=p, label=1 if right else 0, label_time=float(i), index=i)
>>> rows = [scored(i, rng.random() < (0.9 if i < 1000 else 0.3)) for i in range(2000)]
>>> no_scores = np.empty(0)
>>> def health(k):  # the join's counts after row k: joined, predictions, late, orphans, expired, pending
...     return (k + 1, k + 1, 0, 0, 0, 0)
>>> alerts, metrics = monitor.on_merged(rows, no_scores, np.zeros(len(rows), int), health)
>>> [(a.type, a.detected_at_index) for a in alerts]
[('concept_drift', 1055), ('performance', 1099), ('concept_drift', 1099)]
>>> metrics[0].name, metrics[0].window.n
('accuracy', 100)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from detectors import StreamDetector, get_detector
from detectors.registry import RECOMMENDED_ERROR_DETECTOR, recommended_params
from detectors.tasks import Task
from driftline.config import MonitorSettings
from driftline.contracts import Alert, Metric, Scored
from stream_processors.core.concept_drift import ConceptDriftMonitor
from stream_processors.core.emission import MetricsEmitter, metrics_window
from stream_processors.core.feature_drift import FeatureDriftMonitor
from stream_processors.core.join import JoinHealth
from stream_processors.core.label_free import LabelFreeMonitor
from stream_processors.core.labelled import AlertContext, LabelledBatch
from stream_processors.core.performance_floor import PerformanceFloor
from stream_processors.core.schema import Kind

__all__ = ["VersionMonitor"]


class VersionMonitor:
    n_labelled = 0  # joins of this version so far (a class default: older checkpoints)

    def __init__(
        self, model: str, version: str, kinds: Mapping[str, Kind], settings: MonitorSettings, task: Task
    ) -> None:
        self.version = version
        self.kinds = dict(kinds)
        self.task = task
        self.features = FeatureDriftMonitor(model, version, kinds, settings)
        self.label_free = LabelFreeMonitor(task.label_free_estimate(settings.performance_window))
        self.metrics = task.rolling_metrics(settings.performance_window)
        self.floor = PerformanceFloor(
            model,
            version,
            metric=task.metric,
            drop=settings.performance_drop,
            higher_is_better=task.higher_is_better,
            relative=task.relative_drop,
            false_alarms_per_100k=settings.false_alarms_per_100k,
            every=settings.metrics_every,
        )
        self.concept = ConceptDriftMonitor(
            model,
            version,
            error_detector(settings, task),
            window=settings.performance_window,
            error_name="mean absolute error" if task.name == "regression" else "error rate",
        )
        self.emitter = MetricsEmitter(model, version, settings.metrics_every)
        self.newest_labelled = -1

    def on_predictions(
        self, cols: Mapping[str, np.ndarray], index: np.ndarray, time: np.ndarray
    ) -> list[Alert]:
        """A batch of this version's predictions as columns (see :func:`~.schema.columns`), as read."""
        return self.features.update(cols, index, time)

    def on_merged(
        self,
        scored: Sequence[Scored],
        scores: np.ndarray,
        seen: np.ndarray,
        health: Callable[[int], JoinHealth],
    ) -> tuple[list[Alert], list[Metric]]:
        """The version's joins and merged predictions' ``scores``, in the join's merge order:
        ``seen[k]`` of the scores precede join ``k``, and ``health(k)`` is the join's counts right
        after it (published with the metrics).

        The floor is checked, and metrics published, after every ``metrics_every``-th join of the
        version: at fixed positions of the merged sequence, never where a batch happens to end."""
        alerts: list[Alert] = []
        published: list[Metric] = []
        observed = 0
        if scored:
            batch = LabelledBatch.of(scored, self.newest_labelled)
            self.newest_labelled = int(batch.at[-1])
            errors = self.task.errors(batch.y_true, batch.y_pred)
            step, a = self.emitter.every, 0
            while a < len(batch):  # chunks end at the version's every ``step``-th join
                b = min(len(batch), a + step - self.n_labelled % step)
                alerts += self._concept_drift(batch, errors, a, b)
                self.n_labelled += b - a
                if self.n_labelled % step == 0:
                    self.label_free.observe(scores[observed : seen[b - 1]])
                    observed = int(seen[b - 1])
                    alerts += self._check_floor(int(batch.at[b - 1]), batch.label_time(b - 1))
                    published += self.emitter.emit(self.metrics, self.label_free, health(b - 1))
                a = b
        self.label_free.observe(scores[observed:])
        return alerts, published

    def _concept_drift(self, batch: LabelledBatch, errors: np.ndarray, a: int, b: int) -> list[Alert]:
        """Rows ``a:b`` through the error-stream detector and the rolling metrics. An alarm's context
        is the metrics' window right after its own row, whatever the batch it came in."""
        done = a

        def metrics_to(end: int) -> None:
            nonlocal done
            if end > done:
                self.metrics.update(
                    batch.y_true[done:end],
                    batch.y_pred[done:end],
                    batch.scores[done:end],
                    batch.index[done:end],
                    batch.time[done:end],
                )
                done = end

        def context(k: int) -> AlertContext:
            metrics_to(a + k + 1)
            return self._context()

        alerts = self.concept.update(
            errors[a:b],
            batch.at[a:b],
            lambda k: batch.label_time(a + k),
            context,
            batch.index[a:b],
            batch.time[a:b],
        )
        metrics_to(b)
        return alerts

    def _check_floor(self, at: int, time: float) -> list[Alert]:
        if self.metrics.n < self.metrics.window:
            return []
        first = self.floor.baseline is None
        se = self.metrics.headline_se()
        alerts = self.floor.check(self.metrics.headline(), at, time, self._context, se)
        if first:  # the first full window: the baseline, and the label-free estimate's calibration
            self.label_free.calibrate(self.metrics)
        elif self.floor.baseline is not None and self.floor.higher_is_better:
            limit = (self.floor.baseline - self.floor.drop, self.floor.drop)
            model = self.floor.model
            alerts += self.label_free.check(model, self.version, self.metrics, limit, at, time, self._context)
        return alerts

    def _context(self) -> AlertContext:
        note = f"{self.floor.describe()}, window of {self.metrics.n} labelled"
        return AlertContext(metrics_window(self.metrics), note)


def error_detector_choice(
    settings: MonitorSettings, task: Task | None = None
) -> tuple[str, dict[str, float]]:
    """The error-stream detector's name and parameters: the settings', else the task's recommended
    (``residual_cusum`` for regression's residuals), else the detectors' recommended."""
    if settings.error_detector is None and task is not None:
        name, recommended = task.error_detector
    else:
        name = settings.error_detector or RECOMMENDED_ERROR_DETECTOR
        recommended = recommended_params(name)
    params = settings.error_detector_params
    return name, dict(recommended if params is None else params)


def error_detector(settings: MonitorSettings, task: Task | None = None) -> StreamDetector:
    name, params = error_detector_choice(settings, task)
    return get_detector(name, **params)
