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
>>> from stream_processors.core.join import LabelJoiner
>>> rng = np.random.default_rng(0)
>>> settings = MonitorSettings(performance_window=100, metrics_every=100)
>>> monitor = VersionMonitor("churn", "1", {"x": "numeric"}, settings, get_task("binary"))
>>> def scored(i, right):
...     p = Prediction(prediction_id=str(i), model="churn", model_version="1", event_time=float(i),
...                    features={"x": 0.0}, prediction=1, score=0.9)
...     return Scored(prediction=p, label=1 if right else 0, label_time=float(i), index=i)
>>> rows = [scored(i, rng.random() < (0.9 if i < 1000 else 0.3)) for i in range(2000)]
>>> alerts, metrics = monitor.on_scored(rows, LabelJoiner(lateness_s=60))
>>> [(a.type, a.detected_at_index) for a in alerts]
[('concept_drift', 1055), ('performance', 1099)]
>>> metrics[0].name, metrics[0].window.n
('accuracy', 100)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from detectors import StreamDetector, get_detector
from detectors.registry import RECOMMENDED_ERROR_DETECTOR, recommended_params
from detectors.tasks import Task
from driftline.config import MonitorSettings
from driftline.contracts import Alert, Metric, Scored
from stream_processors.core.concept_drift import ConceptDriftMonitor
from stream_processors.core.emission import MetricsEmitter, metrics_window
from stream_processors.core.feature_drift import FeatureDriftMonitor
from stream_processors.core.join import LabelJoiner
from stream_processors.core.label_free import LabelFreeMonitor
from stream_processors.core.labelled import AlertContext, LabelledBatch
from stream_processors.core.performance_floor import PerformanceFloor
from stream_processors.core.schema import SCORE_COLUMN, Kind

__all__ = ["VersionMonitor"]


class VersionMonitor:
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
        )
        self.concept = ConceptDriftMonitor(model, version, error_detector(settings))
        self.emitter = MetricsEmitter(model, version, settings.metrics_every)
        self.newest_labelled = -1

    def on_predictions(
        self, cols: Mapping[str, np.ndarray], index: np.ndarray, time: np.ndarray
    ) -> list[Alert]:
        """A batch of this version's predictions as columns (see :func:`~.schema.columns`)."""
        self.label_free.observe(cols[SCORE_COLUMN])
        return self.features.update(cols, index, time)

    def on_scored(self, scored: Sequence[Scored], joiner: LabelJoiner) -> tuple[list[Alert], list[Metric]]:
        """A batch of this version's newly labelled predictions; ``joiner``'s counts are published."""
        batch = LabelledBatch.of(scored, self.newest_labelled)
        self.newest_labelled = int(batch.at[-1])
        errors = self.task.errors(batch.y_true, batch.y_pred)
        alerts = self.concept.update(errors, batch.at, batch.label_time, self._context)
        published: list[Metric] = []
        # chunked so the floor sees each state the window passes through
        step = self.emitter.every
        for a in range(0, len(batch), step):
            b = min(len(batch), a + step)
            self.metrics.update(
                batch.y_true[a:b], batch.y_pred[a:b], batch.scores[a:b], batch.index[a:b], batch.time[a:b]
            )
            alerts += self._check_floor(int(batch.at[b - 1]), batch.label_time(b - 1))
            published += self.emitter.tick(b - a, self.metrics, self.label_free, joiner)
        return alerts, published

    def _check_floor(self, at: int, time: float) -> list[Alert]:
        if self.metrics.n < self.metrics.window:
            return []
        first = self.floor.baseline is None
        alerts = self.floor.check(self.metrics.headline(), at, time, self._context)
        if first:  # the first full window: the baseline, and the label-free estimate's calibration
            self.label_free.calibrate(self.metrics)
        return alerts

    def _context(self) -> AlertContext:
        note = f"{self.floor.describe()}, window of {self.metrics.n} labelled"
        return AlertContext(metrics_window(self.metrics), note)


def error_detector_choice(settings: MonitorSettings) -> tuple[str, dict[str, float]]:
    """The error-stream detector's name and parameters: the settings', else the detectors' recommended."""
    name = settings.error_detector or RECOMMENDED_ERROR_DETECTOR
    params = settings.error_detector_params
    return name, dict(recommended_params(name) if params is None else params)


def error_detector(settings: MonitorSettings) -> StreamDetector:
    name, params = error_detector_choice(settings)
    return get_detector(name, **params)
