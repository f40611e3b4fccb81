"""Metrics emission: a version's rolling metrics, label-free estimate and join health, every
``every`` labelled predictions, over the window the rolling metrics cover.

>>> from detectors import get_task
>>> from stream_processors.core.join import LabelJoiner
>>> from stream_processors.core.label_free import LabelFreeMonitor
>>> task = get_task("binary")
>>> metrics = task.rolling_metrics(4)
>>> metrics.update([1, 0, 1, 1], [1, 0, 0, 1], [.9, .2, .4, .8])
>>> emitter = MetricsEmitter("churn", "1", every=4)
>>> args = (metrics, LabelFreeMonitor(task.label_free_estimate(4)), LabelJoiner(lateness_s=60))
>>> emitter.tick(3, *args)
[]
>>> [(m.name, m.value) for m in emitter.tick(1, *args)][:3]  # NaN metrics are left out
[('accuracy', 0.75), ('roc_auc', 1.0), ('label_coverage', 0.0)]
"""

from __future__ import annotations

import math

from detectors.tasks import RollingMetrics
from driftline.contracts import Metric, Window
from stream_processors.core.join import LabelJoiner
from stream_processors.core.label_free import LabelFreeMonitor

__all__ = ["MetricsEmitter", "metrics_window"]


def metrics_window(metrics: RollingMetrics) -> Window:
    """The stretch of the stream ``metrics`` covers, as arrival indices and event times."""
    first, last, t0, t1 = metrics.span()
    return Window(start_index=first, end_index=last + 1, start_time=t0, end_time=t1, n=metrics.n)


class MetricsEmitter:
    def __init__(self, model: str, version: str, every: int) -> None:
        if every < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        self.model = model
        self.version = version
        self.every = every
        self.since = 0  # labelled predictions since the last emission

    def tick(
        self, k: int, metrics: RollingMetrics, estimate: LabelFreeMonitor, joiner: LabelJoiner
    ) -> list[Metric]:
        """Count ``k`` more labelled predictions; the metrics to publish once ``every`` are reached."""
        self.since += k
        if self.since < self.every:
            return []
        self.since = 0
        return self.emit(metrics, estimate, joiner)

    def emit(self, metrics: RollingMetrics, estimate: LabelFreeMonitor, joiner: LabelJoiner) -> list[Metric]:
        win = metrics_window(metrics)
        c = joiner.counts
        values = {
            **metrics.get(),
            estimate.name: estimate.get(),
            "label_coverage": c["joined"] / max(1, c["predictions"]),
            "late_labels": float(c["late_labels"]),
            "orphan_labels": float(c["orphan_labels"]),
            "expired_unlabelled": float(c["expired_unlabelled"]),
            "pending_labels": float(joiner.pending),
        }
        return [
            Metric(model=self.model, model_version=self.version, name=k, value=v, window=win)
            for k, v in values.items()
            if not math.isnan(v)
        ]
