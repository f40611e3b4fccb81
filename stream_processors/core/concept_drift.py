"""Concept drift: the task's error stream through a sequential detector, as alerts.

>>> import numpy as np
>>> from detectors import get_detector
>>> from driftline.contracts import Window
>>> from stream_processors.core.labelled import AlertContext
>>> rng = np.random.default_rng(0)
>>> errors = np.r_[rng.random(3000) < 0.1, rng.random(1000) < 0.5].astype(float)
>>> monitor = ConceptDriftMonitor("churn", "1", get_detector("adwin", delta=1e-4))
>>> ctx = AlertContext(Window(start_index=0, end_index=1, start_time=0.0, end_time=0.0, n=1), "")
>>> positions = np.arange(errors.size)
>>> alerts = monitor.update(errors, positions, lambda k: float(k), lambda k: ctx)
>>> [(a.type, a.detected_at_index) for a in alerts][:1]
[('concept_drift', 3071)]
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np

from detectors.base import StreamDetector
from driftline.contracts import Alert
from stream_processors.core.labelled import AlertContext, labelled_alert

__all__ = ["ConceptDriftMonitor"]


class ConceptDriftMonitor:
    """Feeds a version's error stream (1.0 = wrong, for classification) to ``detector``; every alarm
    becomes a ``concept_drift`` alert at the stream position of the row that raised it."""

    def __init__(self, model: str, version: str, detector: StreamDetector) -> None:
        self.model = model
        self.version = version
        self.detector = detector

    def update(
        self,
        errors: np.ndarray,
        at: np.ndarray,
        label_time: Callable[[int], float],
        context: Callable[[int], AlertContext],
    ) -> list[Alert]:
        """``at[k]``/``label_time(k)``/``context(k)``: where and when row ``k``'s alarm is raised, and
        what it reports."""
        n = errors.size
        before = self.detector.n
        alerts = []
        for sig in self.detector.update_many(errors):
            k = min(n - 1, max(0, sig.index - before - 1))
            if sig.recent is not None and sig.baseline is not None:
                what = f"error rate {sig.baseline:.3f} -> {sig.recent:.3f} ({sig.detector}); "
            else:
                what = f"{sig.detector} {sig.statistic}={sig.value:.4g} crossed {sig.threshold:.4g}; "
            alerts.append(
                labelled_alert(
                    self.model,
                    self.version,
                    "concept_drift",
                    int(at[k]),
                    label_time(k),
                    sig.statistic,
                    sig.value,
                    sig.threshold,
                    what,
                    partial(context, k),
                )
            )
        return alerts
