"""Feature drift of one model version as data-drift and prediction-drift alerts.

:class:`~detectors.FeatureSetDrift` tests tumbling windows of rows against the reference; this
maps the rows it counts to arrival indices and event times (:class:`RowClock`), records the
reference window once, and raises one alert when a feature starts drifting. A feature alerts again
only after a window in which it was not flagged (it came back: the alert re-arms).

>>> import numpy as np
>>> from driftline.config import MonitorSettings
>>> rng = np.random.default_rng(0)
>>> settings = MonitorSettings(reference_size=1000, window_size=500)
>>> monitor = FeatureDriftMonitor("churn", "1", {"age": "numeric"}, settings)
>>> def rows(start, n, shift):
...     cols = {"age": rng.normal(40 + 10 * shift, 10, n), SCORE_COLUMN: rng.random(n)}
...     index = np.arange(start, start + n)
...     return cols, index, index.astype(float)
>>> monitor.update(*rows(0, 2000, 0.0))
[]
>>> [(a.type, a.feature, a.detected_at_index) for a in monitor.update(*rows(2000, 1000, 0.5))]
[('data_drift', 'age', 2499)]
>>> monitor.update(*rows(3000, 500, 0.5))  # still drifting: already alerted
[]
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from detectors import FeatureDrift, FeatureSetDrift
from detectors.calibration import DEFAULT_FALSE_ALARMS_PER_100K
from driftline.config import MonitorSettings
from driftline.contracts import Alert, AlertType, Window, alert_id_for
from stream_processors.core.schema import SCORE_COLUMN, Kind

__all__ = ["FeatureDriftMonitor", "RowClock"]


class RowClock:
    """Maps a version's row numbers (as its drift detector counts them) to arrival index and time.

    >>> import numpy as np
    >>> clock = RowClock()
    >>> clock.add(np.array([10, 12, 13]), np.array([1.0, 2.0, 3.0]))
    >>> clock.add(np.array([20, 21]), np.array([4.0, 5.0]))
    >>> clock.window(1, 4)
    Window(start_index=12, end_index=21, start_time=2.0, end_time=4.0, n=3)
    """

    def __init__(self) -> None:
        self._chunks: list[tuple[int, np.ndarray, np.ndarray]] = []
        self.rows = 0

    def add(self, index: np.ndarray, time: np.ndarray) -> None:
        self._chunks.append((self.rows, index, time))
        self.rows += index.size

    def window(self, start: int, end: int) -> Window:
        lo, hi = self._at(start), self._at(end - 1)
        return Window(start_index=lo[0], end_index=hi[0] + 1, start_time=lo[1], end_time=hi[1], n=end - start)

    def forget_before(self, row: int) -> None:
        while len(self._chunks) > 1 and self._chunks[1][0] <= row:
            self._chunks.pop(0)

    def _at(self, row: int) -> tuple[int, float]:
        for start, idx, t in reversed(self._chunks):
            if start <= row:
                k = min(row - start, idx.size - 1)
                return int(idx[k]), float(t[k])
        start, idx, t = self._chunks[0]
        return int(idx[0]), float(t[0])


class FeatureDriftMonitor:
    def __init__(
        self, model: str, version: str, kinds: Mapping[str, Kind], settings: MonitorSettings
    ) -> None:
        self.model = model
        self.version = version
        self.drift = FeatureSetDrift(
            {**kinds, SCORE_COLUMN: "numeric"},
            reference_size=settings.reference_size,
            window_size=settings.window_size,
            false_alarms_per_100k=settings.false_alarms_per_100k or DEFAULT_FALSE_ALARMS_PER_100K,
        )
        self.clock = RowClock()
        self.reference: Window | None = None  # the reference rows, as arrival indices and times
        self.firing: set[str] = set()  # columns alerted on and flagged in every window since
        self.windows_done = 0

    def update(self, cols: Mapping[str, np.ndarray], index: np.ndarray, time: np.ndarray) -> list[Alert]:
        """Feed a batch of columns (features and :data:`SCORE_COLUMN`) with their rows' arrival
        indices and event times; returns the alerts of the windows it completes."""
        self.clock.add(index, time)
        ref = self.drift.reference_size
        if self.reference is None and self.clock.rows >= ref:
            self.reference = self.clock.window(0, ref)
        flags = self.drift.update(cols)
        if self.drift.windows_tested == self.windows_done:
            return []
        self.windows_done = self.drift.windows_tested
        latest = self.drift.last_window
        assert latest is not None  # a window was tested
        self.firing &= {f.feature for f in flags if f.window_end == latest[1]}  # came back: re-arm
        alerts = []
        for f in flags:
            if f.feature not in self.firing:
                self.firing.add(f.feature)
                alerts.append(self._alert(f))
        # after the windows were mapped
        self.clock.forget_before(self.drift.rows_seen - 2 * self.drift.window_size)
        return alerts

    def _alert(self, f: FeatureDrift) -> Alert:
        kind: AlertType = "prediction_drift" if f.feature == SCORE_COLUMN else "data_drift"
        feature = None if f.feature == SCORE_COLUMN else f.feature
        win = self.clock.window(f.window_start, f.window_end)
        value = f.p_value if f.p_value is not None else f.statistic
        what = f"{feature or 'prediction score'}: {f.test}={f.statistic:.4g}"
        moved = f" ({f.category} share {f.effect:+.3f})" if f.category else f" (mean {f.effect:+.2f} sd)"
        return Alert(
            alert_id=alert_id_for(self.model, self.version, kind, feature, win.start_index),
            type=kind,
            model=self.model,
            model_version=self.version,
            feature=feature,
            statistic=f"{f.test}_p_value",
            value=float(value),
            threshold=float(f.threshold),
            p_value=f.p_value,
            effect=float(f.effect),
            direction=f.direction,
            window=win,
            reference=self.reference,
            detected_at_index=win.end_index - 1,
            detected_at_time=win.end_time,
            message=f"{what}{moved}, psi={f.psi:.3f}, window {win.start_index}..{win.end_index - 1}",
        )
