"""HDDM_A (Hoeffding drift detection, average based), wrapping river's, with a polarity."""

from __future__ import annotations

from river import drift

from ._polarity import Polarity, check_polarity, check_prob
from .base import Direction, DriftSignal, StreamDetector

__all__ = ["HDDM_A"]


class HDDM_A(StreamDetector):  # noqa: N801 - the algorithm's name
    """HDDM_A compares the running mean with the minimum (maximum) mean seen so far using
    Hoeffding bounds at confidence ``drift_confidence``; inputs must lie in [0, 1].

    River's one-sided test alarms on increases only; ``polarity="both"`` turns on its two-sided test,
    ``"decrease"`` feeds ``1 - x`` to the one-sided test.

    >>> import numpy as np
    >>> rng = np.random.default_rng(7)
    >>> errors = np.r_[rng.random(2000) < 0.1, rng.random(2000) < 0.3].astype(float)
    >>> [(s.index, s.direction) for s in HDDM_A().update_many(errors)]
    [(2072, 'increase')]
    """

    name = "hddm_a"

    def __init__(
        self,
        drift_confidence: float = 0.001,
        warning_confidence: float = 0.005,
        polarity: Polarity = "increase",
    ) -> None:
        self.drift_confidence = check_prob("drift_confidence", drift_confidence)
        self.warning_confidence = check_prob("warning_confidence", warning_confidence)
        self.polarity = check_polarity(polarity)
        super().__init__()

    def _reset(self) -> None:
        self.n = 0
        self._river = drift.binary.HDDMA(
            drift_confidence=self.drift_confidence,
            warning_confidence=self.warning_confidence,
            two_sided_test=self.polarity == "both",
        )

    def update(self, x: float) -> DriftSignal | None:
        self.n += 1
        d = self._river
        if self.polarity == "decrease":
            x = 1.0 - x
        d.update(x)
        if not d.drift_detected:
            return None
        mean = d._z.get()
        direction: Direction
        if self.polarity == "both":
            direction = "increase" if d._mean_incr(self.drift_confidence) else "decrease"
        else:
            direction = "increase" if self.polarity == "increase" else "decrease"
        best = d._x_min.get() if direction == "increase" or self.polarity == "decrease" else d._x_max.get()
        if self.polarity == "decrease":
            mean, best = 1.0 - mean, 1.0 - best
        return DriftSignal(
            self.name,
            self.n,
            "mean",
            float(mean),
            self.drift_confidence,
            direction,
            baseline=float(best),
            recent=float(mean),
        )
