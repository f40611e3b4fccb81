"""The label-free estimate of a version's metric: read from prediction scores, before labels arrive.

It follows the newest predictions' scores and is calibrated once, on the first full window of
labelled predictions (the same window that sets the performance baseline). It is a signal of its own
(:meth:`LabelFreeMonitor.check`, at the version's fixed metric positions):

* the estimate below the performance floor while the labelled metric is not (labels are missing or
  late) -> a ``performance`` alert, statistic ``expected_<metric>``, a warning until labels confirm;
* once labels arrive, the estimate and the realised metric over the same labelled predictions
  disagree beyond chance (``|z| > 3``, the calibration window's error counted) and by at least the
  floor's drop -> a ``concept_drift`` alert "estimate unreliable -- likely concept drift": the
  scores look as confident as before, the labels say otherwise, which no label-free estimate can
  see by itself.

Each alerts once and re-arms when the condition clears.

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

import math
from collections.abc import Callable

import msgspec
import numpy as np

from detectors.tasks import LabelFreeEstimate, RollingMetrics
from driftline.contracts import Alert
from stream_processors.core.labelled import AlertContext, labelled_alert, with_change

__all__ = ["LabelFreeMonitor"]


class LabelFreeMonitor:
    calibrated = False  # class defaults: checkpoints from before these existed
    low = False  # the estimate is below the floor (alerted)
    unreliable = False  # the estimate disagrees with the labels (alerted)

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
            self.calibrated = True

    def get(self) -> float:
        return self.estimate.get()

    def check(
        self,
        model: str,
        version: str,
        metrics: RollingMetrics,
        floor: tuple[float, float] | None,
        at: int,
        time: float,
        context: Callable[[], AlertContext],
    ) -> list[Alert]:
        """The estimate's alerts at a metrics position; ``floor``: (the limit, the drop) of the
        performance floor (metrics where higher is better), None before it has a baseline."""
        if not self.calibrated or floor is None:
            return []
        limit, drop = floor
        alerts = []
        estimate, realised = self.get(), metrics.headline()
        low = bool(estimate < limit) and not realised < limit
        if low and not self.low:
            what = f"label-free {self.name} {estimate:.3f} below the floor {limit:.3f} "
            what += f"(labelled {realised:.3f}); "
            alert = labelled_alert(
                model, version, "performance", at, time, self.name, estimate, limit, what, context
            )
            alerts.append(
                msgspec.structs.replace(alert, severity="warning", after=estimate, direction="decrease")
            )
        self.low = low
        gap = self._reconcile(metrics, drop)
        if gap is not None and not self.unreliable:
            alerts.append(self._unreliable(model, version, gap, at, time, context))
        self.unreliable = gap is not None
        return alerts

    def _reconcile(self, metrics: RollingMetrics, drop: float) -> tuple[float, float, float, int] | None:
        """(estimated, realised, z, rows) over the labelled window when they disagree, else None."""
        check = getattr(self.estimate, "check", None)
        if check is None:
            return None
        scores, targets = metrics.window_arrays()
        ok = ~np.isnan(scores)
        c = check(scores[ok], targets[ok])
        # the calibration is itself a window of the same size: its error doubles the variance
        z = c.z / math.sqrt(2.0)
        if c.rows == 0 or not abs(z) > 3.0 or abs(c.realised - c.estimated) < drop:
            return None
        return c.estimated, c.realised, z, c.rows

    def _unreliable(
        self,
        model: str,
        version: str,
        gap: tuple[float, float, float, int],
        at: int,
        time: float,
        context: Callable[[], AlertContext],
    ) -> Alert:
        est, real, z, rows = gap
        what = (
            f"estimate unreliable -- likely concept drift: {self.name} {est:.3f} vs realised {real:.3f} "
            f"over the same {rows} labelled predictions (z={z:.1f}); "
        )
        alert = labelled_alert(
            model, version, "concept_drift", at, time, "estimate_gap_z", z, 3.0, what, context
        )
        return with_change(alert, est, real)
