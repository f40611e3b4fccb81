"""The label-free estimate of a version's metric: read from prediction scores, before labels arrive.

It follows the newest predictions' scores and is calibrated once, on the first full window of
labelled predictions (the same window that sets the performance baseline).

>>> import numpy as np
>>> from detectors import get_task
>>> task = get_task("binary")
>>> rng = np.random.default_rng(0)
>>> p = rng.random(2000)
>>> y = (rng.random(2000) < p).astype(int)
>>> metrics = task.rolling_metrics(1000)
>>> metrics.update(y[:1000], (p[:1000] >= 0.5).astype(int), p[:1000])
>>> estimate = LabelFreeMonitor(task.label_free_estimate(1000))
>>> estimate.calibrate(metrics)
>>> estimate.observe(np.r_[p[1000:], np.nan])  # missing scores are left out
>>> estimate.name, round(estimate.get(), 3)
('expected_accuracy', 0.756)
"""

from __future__ import annotations

import numpy as np

from detectors.tasks import LabelFreeEstimate, RollingMetrics

__all__ = ["LabelFreeMonitor"]


class LabelFreeMonitor:
    def __init__(self, estimate: LabelFreeEstimate) -> None:
        self.estimate = estimate

    @property
    def name(self) -> str:
        return self.estimate.name

    def observe(self, scores: np.ndarray) -> None:
        """Add a batch of prediction scores (NaN where a prediction had none)."""
        self.estimate.update(scores[~np.isnan(scores)])

    def calibrate(self, metrics: RollingMetrics) -> None:
        """Fit the estimate on the labelled predictions in ``metrics``' window that have a score."""
        scores, targets = metrics.window_arrays()
        ok = ~np.isnan(scores)
        if ok.any():
            self.estimate.fit(scores[ok], targets[ok])

    def get(self) -> float:
        return self.estimate.get()
