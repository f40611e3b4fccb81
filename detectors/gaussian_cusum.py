"""Gaussian mean-shift CUSUM for numeric streams, its threshold derived from a false-alarm budget."""

from __future__ import annotations

import math

from ._polarity import Polarity, check_int, check_polarity
from .base import Direction, DriftSignal, StreamDetector
from .calibration import arl_from_budget

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
    if 4 * c * h0 < 1:
        return (1 - math.sqrt(1 - 4 * c * h0)) / (2 * c)
    return h0 / max(1 - 3 / (k * math.sqrt(n)), 0.3)


class GaussianCUSUM(StreamDetector):
    """CUSUM for a shift of the mean of a numeric stream, in units of its in-control spread: Driftline's
    recommended sequential detector for a single numeric feature (or any numeric stream). The first
    ``warmup`` events estimate mean and standard deviation; the estimate keeps growing with every event
    and the thresholds are refreshed every ``warmup`` events (a long baseline makes small shifts
    detectable). Two designs run on each watched side: ``shift`` (small shifts, in SDs) and
    ``fast_shift`` (large shifts, found in a few events); each adds the log-likelihood ratio ``k z - k^2
    / 2`` of a mean shifted by ``k`` SDs. Calibration is analytic: with in-control increments of mean
    ``-k^2 / 2`` the average run length is ``ARL0 ~ e^(h + 1.166 k) / (k^2 / 2)`` (Siegmund's
    approximation; the overshoot ``1.166 k`` is left out as a safety margin), so ``h = ln(ARL0 k^2 / 2)``
    where ``ARL0 = 100_000 /
    false_alarms_per_100k`` times the number of statistics (sides x designs: each gets an equal share of
    the budget). ``h`` is then raised to absorb the estimation error of a baseline of ``n`` events (see
    ``_estimation_margin``: the budget holds on average over that error). After an alarm a new warm-up starts
    (the new level becomes the new normal).

    >>> import numpy as np
    >>> rng = np.random.default_rng(7)
    >>> x = np.r_[rng.normal(10, 2, 3000), rng.normal(11, 2, 1000)]
    >>> [(s.index, s.direction) for s in GaussianCUSUM().update_many(x)]
    [(3073, 'increase')]
    """

    name = "gaussian_cusum"

    def __init__(
        self,
        false_alarms_per_100k: float = 0.5,
        shift: float = 0.25,
        fast_shift: float | None = 0.75,
        warmup: int = 1000,
        polarity: Polarity = "both",
    ) -> None:
        arl = arl_from_budget(false_alarms_per_100k)
        if not 0 < shift <= 5:
            raise ValueError(f"shift must be in (0, 5] reference SDs, got {shift}")
        if fast_shift is not None and not shift < fast_shift <= 5:
            raise ValueError(f"fast_shift must be in (shift, 5] or None, got {fast_shift}")
        self.false_alarms_per_100k = float(false_alarms_per_100k)
        self.shift = float(shift)
        self.fast_shift = None if fast_shift is None else float(fast_shift)
        self.warmup = check_int("warmup", warmup, 10)
        self.polarity = check_polarity(polarity)
        self._shifts = (self.shift,) if self.fast_shift is None else (self.shift, self.fast_shift)
        self._signs = {"increase": (1.0,), "decrease": (-1.0,), "both": (1.0, -1.0)}[self.polarity]
        self._arl = len(self._signs) * len(self._shifts) * arl
        super().__init__()

    def _reset(self) -> None:
        self.n = 0
        self._restart()

    def _restart(self) -> None:
        self._count = 0
        self._mean = 0.0
        self._m2 = 0.0
        self._sd = 1.0
        # one CUSUM per (side, design):
        # [statistic, sign * shift, shift**2 / 2, threshold, events and their sum since it left zero]
        self._stats: list[list[float]] = []
        self.h = float("nan")

    def _refresh(self) -> None:
        """(Re-)estimate mean and SD from every event since the last (re)start; keep the statistics."""
        self._sd = max(math.sqrt(self._m2 / (self._count - 1)), 1e-12)
        old = [(st[0], st[4], st[5]) for st in self._stats] or None
        stats = []
        n = self._count
        for sign in self._signs:
            for k in self._shifts:
                h0 = max(math.log(self._arl * k * k / 2), 1.0)  # Siegmund, known mean and SD
                stats.append([0.0, sign * k, k * k / 2, _estimation_margin(h0, k, n), 0.0, 0.0])
        if old:
            for st, (v, runs, total) in zip(stats, old, strict=False):
                st[0], st[4], st[5] = v, runs, total
        self._stats = stats
        self.h = stats[0][3]

    def update(self, x: float) -> DriftSignal | None:
        self.n += 1
        self._count += 1
        d = x - self._mean
        self._mean += d / self._count
        self._m2 += d * (x - self._mean)
        stats = self._stats
        if not stats:
            if self._count >= self.warmup:
                self._refresh()
            return None
        z = (x - self._mean) / self._sd
        for st in stats:
            v = st[0] + st[1] * z - st[2]
            if v <= 0.0:
                st[0] = st[4] = st[5] = 0.0
            elif v > st[3]:
                k, total = st[4] + 1, st[5] + x  # the run since the statistic left zero, this event included
                baseline = (self._mean * self._count - total) / max(self._count - k, 1)
                self._restart()
                direction: Direction = "increase" if st[1] > 0 else "decrease"
                return DriftSignal(self.name, self.n, "cusum_llr", v, st[3], direction, baseline, total / k)
            else:
                st[0] = v
                st[4] += 1
                st[5] += x
        if self._count % self.warmup == 0:
            self._refresh()
        return None
