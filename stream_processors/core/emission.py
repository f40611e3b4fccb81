"""Metrics emission: a version's rolling metrics, label-free estimate and join health, over the
window the rolling metrics cover (the version monitor emits after every ``every``-th join).

>>> from detectors import get_task
>>> from stream_processors.core.label_free import LabelFreeMonitor
>>> task = get_task("binary")
>>> metrics = task.rolling_metrics(4)
>>> metrics.update([1, 0, 1, 1], [1, 0, 0, 1], [.9, .2, .4, .8])
>>> emitter = MetricsEmitter("churn", "1", every=4)
>>> args = (metrics, LabelFreeMonitor(task.label_free_estimate(4)), (4, 4, 0, 0, 0, 0))
>>> [(m.name, m.value) for m in emitter.emit(*args)][:3]  # NaN metrics are left out
[('accuracy', 0.75), ('roc_auc', 1.0), ('label_coverage', 1.0)]
"""

from __future__ import annotations

import math

from detectors.tasks import RollingMetrics
from driftline.contracts import Metric, Window
from stream_processors.core.join import JoinHealth
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

    def emit(self, metrics: RollingMetrics, estimate: LabelFreeMonitor, health: JoinHealth) -> list[Metric]:
        """``health``: the join's counts at the join this emission follows."""
        win = metrics_window(metrics)
        joined, predictions, late, orphans, expired, pending = health
        values = {
            **metrics.get(),
            estimate.name: estimate.get(),
            "label_coverage": joined / max(1, predictions),
            "late_labels": float(late),
            "orphan_labels": float(orphans),
            "expired_unlabelled": float(expired),
            "pending_labels": float(pending),
        }
        return [
            Metric(model=self.model, model_version=self.version, name=k, value=v, window=win)
            for k, v in values.items()
            if not math.isnan(v)
        ]
