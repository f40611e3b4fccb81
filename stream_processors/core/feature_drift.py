"""Feature drift of one model version as data-drift, prediction-drift and multivariate-drift alerts.

:class:`~detectors.SequentialFeatureDrift` runs calibrated CUSUMs over every feature, the prediction
score and (with two or more numeric features) the PCA reconstruction error of the numeric features, one
row at a time in effect but a batch at a time in numpy, and alarms the same whatever the batch
boundaries. This maps the rows it counts to arrival indices and event times (:class:`RowClock`) and
turns each alarm into one alert: its window runs from the estimated change point to the row that
raised it, and it is explained by the window test of those rows against the reference (p-value,
effect, direction, PSI, the category that moved). A stream alerts again only after it came back (a
window of ``window_size`` rows that looks like the reference re-arms it).

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
>>> alerts = monitor.update(*rows(2000, 1000, 0.7))
>>> [(a.type, a.feature, a.window.start_index, a.detected_at_index) for a in alerts]
[('data_drift', 'age', 2002, 2049)]
>>> monitor.update(*rows(3000, 500, 0.7))  # still drifting: already alerted
[]
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from detectors.calibration import DEFAULT_FALSE_ALARMS_PER_100K
from detectors.sequential_features import JOINT, SequentialDrift, SequentialFeatureDrift
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
    """A version's feature, prediction and joint drift. ``budgets``: features' own false-alarm
    budgets (out of the model's; see :class:`~detectors.SequentialFeatureDrift`). The reference is
    the first ``reference_size`` rows, unless :meth:`prime` gives one before the first update."""

    score_drift: SequentialFeatureDrift | None = None  # primed without scores (class default: checkpoints)
    primed = False

    def __init__(
        self,
        model: str,
        version: str,
        kinds: Mapping[str, Kind],
        settings: MonitorSettings,
        budgets: Mapping[str, float] | None = None,
    ) -> None:
        self.model = model
        self.version = version
        self.budgets = {f: b for f, b in (budgets or {}).items() if f in kinds}
        self.total = settings.false_alarms_per_100k or DEFAULT_FALSE_ALARMS_PER_100K
        self.reference_size, self.rearm_window = settings.reference_size, settings.window_size
        self.drift = self._detector({**kinds, SCORE_COLUMN: "numeric"}, self.total, self.budgets)
        self.clock = RowClock()
        self.reference: Window | None = None  # the reference rows, as arrival indices and times

    def _detector(
        self, kinds: Mapping[str, Kind], total: float, budgets: Mapping[str, float]
    ) -> SequentialFeatureDrift:
        joint = [f for f, k in kinds.items() if k == "numeric" and f != SCORE_COLUMN]
        return SequentialFeatureDrift(
            kinds,
            reference_size=self.reference_size,
            false_alarms_per_100k=total,
            joint=joint,
            rearm_window=self.rearm_window,
            budgets=budgets,
        )

    def declare(self, budgets: Mapping[str, float], rows: Mapping[str, np.ndarray] | None) -> None:
        """Before the first update: the features' own ``budgets`` (see the class) and, if given, the
        reference ``rows`` (:meth:`prime`) -- what the model's spec declares."""
        if self.drift.rows_seen:
            raise ValueError("declare a version's budgets and reference before its first update")
        self.budgets = {f: b for f, b in budgets.items() if f in self.drift.kinds}
        self.drift = self._detector(self.drift.kinds, self.total, self.budgets)
        if rows is not None:
            self.prime(rows)

    def prime(self, rows: Mapping[str, np.ndarray]) -> None:
        """Measure drift against ``rows`` (every feature; :data:`SCORE_COLUMN` too if known) from the
        first row on. Without scores, the prediction score gets a detector of its own whose reference is
        the version's first ``reference_size`` scores, with its equal share of the model's budget (the
        share it has in one detector: the rest after the features' own, split over the streams)."""
        if SCORE_COLUMN not in rows:
            kinds = {f: k for f, k in self.drift.kinds.items() if f != SCORE_COLUMN}
            numeric = sum(k == "numeric" for k in kinds.values())
            streams = len(kinds) + 1 + (numeric >= 2)  # the features, the score, the joint stream
            share = (self.total - sum(self.budgets.values())) / (streams - len(self.budgets))
            self.drift = self._detector(kinds, self.total - share, self.budgets)
            self.score_drift = self._detector({SCORE_COLUMN: "numeric"}, share, {})
        self.drift.prime(rows)
        self.primed = True

    def reference_rows(self) -> dict[str, np.ndarray] | None:
        """The reference rows (features and scores), once complete; None before."""
        parts = [d.reference for d in (self.drift, self.score_drift) if d is not None]
        if any(p is None for p in parts):
            return None
        return {f: col for p in parts if p is not None for f, col in p.items()}

    def update(self, cols: Mapping[str, np.ndarray], index: np.ndarray, time: np.ndarray) -> list[Alert]:
        """Feed a batch of columns (features and :data:`SCORE_COLUMN`) with their rows' arrival
        indices and event times; returns the alerts its rows raised, in row order."""
        self.clock.add(index, time)
        ref = self.drift.reference_size
        if self.reference is None and not self.primed and self.clock.rows >= ref:
            self.reference = self.clock.window(0, ref)
        found = self.drift.update(cols)
        if self.score_drift is not None:
            found = sorted(found + self.score_drift.update(cols), key=lambda d: d.row)
        alerts = [self._alert(d) for d in found]
        self.clock.forget_before(self.drift.rows_seen - self.drift.keep_rows)
        return alerts

    def levels(self) -> list[tuple[AlertType, str | None, float]]:
        """(alert type, feature, level) of every monitored stream: its CUSUM as a fraction of its
        alarm threshold now (see :meth:`~detectors.SequentialFeatureDrift.levels`)."""
        out: list[tuple[AlertType, str | None, float]] = []
        for name, level in self.drift.levels().items():
            kind = _kind(name)
            out.append((kind, name if kind == "data_drift" else None, level))
        return out

    def _alert(self, d: SequentialDrift) -> Alert:
        kind = _kind(d.feature)
        feature = d.feature if kind == "data_drift" else None
        win = self.clock.window(d.change_point, d.row + 1)
        what = {"prediction_drift": "prediction score", "multivariate_drift": "joint distribution"}
        name = what.get(kind, d.feature)
        if d.category:
            moved = f" ({d.category} share {d.effect:+.3f})"
        elif kind == "multivariate_drift":
            moved = f" (reconstruction error; most changed: {', '.join(d.contributors) or '-'})"
        else:
            moved = f" (mean {d.effect:+.2f} sd)"
        p = "-" if d.p_value is None else f"{d.p_value:.3g}"
        psi = "" if d.psi is None else f", psi={d.psi:.3f}"
        return Alert(
            alert_id=alert_id_for(self.model, self.version, kind, feature, win.start_index),
            type=kind,
            model=self.model,
            model_version=self.version,
            feature=feature,
            statistic=d.statistic,
            value=d.value,
            threshold=d.threshold,
            p_value=d.p_value,
            effect=float(d.effect),
            direction=d.direction,
            psi=d.psi,
            category=d.category,
            contributors=list(d.contributors),
            window=win,
            reference=self.reference,
            detected_at_index=win.end_index - 1,
            detected_at_time=win.end_time,
            message=f"{name}: {d.direction} since #{win.start_index} (cusum {d.value:.1f} > "
            f"{d.threshold:.1f}); {d.test} p={p} over {d.rows} rows{moved}{psi}",
        )


def _kind(stream: str) -> AlertType:
    """The alert type a drift stream raises: the prediction score's, the joint one's, or a feature's."""
    return (
        "prediction_drift"
        if stream == SCORE_COLUMN
        else "multivariate_drift"
        if stream == JOINT
        else "data_drift"
    )
