"""Gaussian mean-shift CUSUM for numeric streams, its threshold derived from a false-alarm budget."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ._cusum import CUSUM, CUSUMStatistic, solve_margin
from ._polarity import Polarity
from .calibration import DEFAULT_FALSE_ALARMS_PER_100K

__all__ = ["GaussianCUSUM"]


def _estimation_margin(h0: float, k: float, n: int) -> float:
    """Threshold that keeps the budget *on average* over the estimation error of mean and SD.

    A mean error ``e`` (SD units) changes the in-control drift to ``-k^2/2 +- k e``, i.e. the false-alarm
    rate of the two sides to ``e^-h (e^(2he/k) + e^(-2he/k)) / 2``; with ``e ~ N(0, 1/n)`` its mean is
    ``e^-h e^(2h^2/(k^2 n))``. A relative SD error ``r ~ N(0, 1/(2n))`` scales the increments by
    ``1 + r``, adding about ``e^(h^2/n)``. Solving ``h - c h^2 = h0`` with ``c = 2/(k^2 n) + 1/n`` gives the
    threshold; while the baseline is too short for a solution (``4 c h0 >= 1``), ``h0`` is divided by
    ``1 - 3 / (k sqrt(n))`` (a mean 1.5 standard errors off), at least by 0.3.
    """
    c = 2 / (k * k * n) + 1 / n
    h = solve_margin(h0, c)
    return h0 / max(1 - 3 / (k * math.sqrt(n)), 0.3) if h is None else h


@dataclass(slots=True, kw_only=True)
class _ShiftStatistic(CUSUMStatistic):
    """Adds ``slope * z - drift`` per event: the log-likelihood ratio of a mean shifted by ``k`` SDs
    (``slope = +-k`` by side, ``drift = k^2 / 2``) for a standardised event ``z``."""

    slope: float
    drift: float


class GaussianCUSUM(CUSUM[_ShiftStatistic]):
    """CUSUM for a shift of the mean of a numeric stream, in units of its in-control spread: Driftline's
    recommended sequential detector for a single numeric feature (or any numeric stream). The first
    ``warmup`` events estimate mean and standard deviation; the estimate keeps growing with every event
    and the thresholds are refreshed every ``warmup`` events (a long baseline makes small shifts
    detectable). Two designs run on each watched side: ``shift`` (small shifts, in SDs) and
    ``fast_shift`` (large shifts, found in a few events); each adds the log-likelihood ratio ``k z - k^2
    / 2`` of a mean shifted by ``k`` SDs. Calibration is analytic: with in-control increments of mean
    ``-k^2 / 2`` the average run length is ``ARL0 ~ e^(h + 1.166 k) / (k^2 / 2)`` (Siegmund's
    approximation; the overshoot ``1.166 k`` is left out as a safety margin), so ``h = ln(ARL0 k^2 / 2)``
    where ``ARL0 = 100_000 / false_alarms_per_100k`` times the number of statistics (sides x designs: each
    gets an equal share of the budget). ``h`` is then raised to absorb the estimation error of a baseline
    of ``n`` events (see ``_estimation_margin``: the budget holds on average over that error). After an
    alarm a new warm-up starts (the new level becomes the new normal).

    >>> import numpy as np
    >>> rng = np.random.default_rng(7)
    >>> x = np.r_[rng.normal(10, 2, 3000), rng.normal(11, 2, 1000)]
    >>> [(s.index, s.direction) for s in GaussianCUSUM().update_many(x)]
    [(3085, 'increase')]
    """

    name = "gaussian_cusum"

    def __init__(
        self,
        false_alarms_per_100k: float = DEFAULT_FALSE_ALARMS_PER_100K,
        shift: float = 0.25,
        fast_shift: float | None = 0.75,
        warmup: int = 1000,
        polarity: Polarity = "both",
    ) -> None:
        if not 0 < shift <= 5:
            raise ValueError(f"shift must be in (0, 5] reference SDs, got {shift}")
        if fast_shift is not None and not shift < fast_shift <= 5:
            raise ValueError(f"fast_shift must be in (shift, 5] or None, got {fast_shift}")
        self.shift = float(shift)
        self.fast_shift = None if fast_shift is None else float(fast_shift)
        self._shifts = (self.shift,) if self.fast_shift is None else (self.shift, self.fast_shift)
        super().__init__(false_alarms_per_100k, warmup, polarity, len(self._shifts))

    def _start(self) -> None:
        self._mean = 0.0
        self._m2 = 0.0
        self._sd = 1.0

    def _observe(self, x: float) -> None:
        d = x - self._mean
        self._mean += d / self._count
        self._m2 += d * (x - self._mean)

    def _calibrate(self) -> list[_ShiftStatistic]:
        """Mean and SD from every event since the last (re)start; a statistic per (side, design)."""
        self._sd = max(math.sqrt(self._m2 / (self._count - 1)), 1e-12)
        stats = []
        for side in self._sides:
            sign = 1.0 if side == "increase" else -1.0
            for k in self._shifts:
                h0 = max(math.log(self._arl * k * k / 2), 1.0)  # Siegmund, known mean and SD
                h = _estimation_margin(h0, k, self._count)
                stats.append(_ShiftStatistic(threshold=h, direction=side, slope=sign * k, drift=k * k / 2))
        return stats

    def _add_increments(self, x: float) -> None:
        z = (x - self._mean) / self._sd
        for st in self._stats:
            st.value = st.value + st.slope * z - st.drift  # in this order: (value + slope z) - drift

    def _baseline(self, run_events: int, run_sum: float) -> float:
        """The mean of the events before the run that raised the alarm."""
        return (self._mean * self._count - run_sum) / max(self._count - run_events, 1)
