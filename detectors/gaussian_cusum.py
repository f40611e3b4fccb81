"""Gaussian mean-shift CUSUM for numeric streams, its threshold derived from a false-alarm budget."""

from __future__ import annotations

import math

from ._polarity import Polarity, check_int, check_polarity
from .base import DriftSignal, StreamDetector
from .calibration import arl_from_budget

__all__ = ["GaussianCUSUM"]


class GaussianCUSUM(StreamDetector):
    """CUSUM for a shift of the mean of a numeric stream, in units of its in-control spread.

    The first ``warmup`` events estimate the mean and standard deviation; each later event adds the
    log-likelihood ratio ``shift * z - shift**2 / 2`` (``z`` the standardised value) of a mean shifted
    by ``shift`` SDs, for each watched side. Calibration is analytic: with in-control increments of
    mean ``-shift**2 / 2`` the average run length is ``ARL0 ~ e^(h + 1.166 shift) / (shift**2 / 2)``
    (Siegmund's approximation, overshoot-corrected), so ``h = ln(ARL0 * shift**2 / 2) - 1.166 shift``
    with ``ARL0 = sides * 100_000 / false_alarms_per_100k`` meets the budget for a known in-control
    distribution; ``h`` is then divided by ``1 - 4 / (shift *
    sqrt(warmup))``, the slack that keeps the budget when the warm-up mean is off by two standard
    errors. ``shift`` trades delays: the detector is fastest for shifts near ``shift`` and still finds
    shifts down to ``shift / 2`` (slowly). After an alarm a new warm-up starts.

    >>> import numpy as np
    >>> rng = np.random.default_rng(7)
    >>> x = np.r_[rng.normal(10, 2, 3000), rng.normal(11, 2, 1000)]
    >>> [(s.index, s.direction) for s in GaussianCUSUM().update_many(x)]
    [(3069, 'increase')]
    """

    name = "gaussian_cusum"

    def __init__(self, false_alarms_per_100k: float = 0.5, shift: float = 0.5, warmup: int = 1000,
                 polarity: Polarity = "both") -> None:
        arl = arl_from_budget(false_alarms_per_100k)
        if not 0 < shift <= 5:
            raise ValueError(f"shift must be in (0, 5] reference SDs, got {shift}")
        self.false_alarms_per_100k = float(false_alarms_per_100k)
        self.shift = float(shift)
        self.warmup = check_int("warmup", warmup, 10)
        self.polarity = check_polarity(polarity)
        slack = 1 - 4 / (self.shift * math.sqrt(self.warmup))
        if slack < 0.25:
            raise ValueError(f"warmup={warmup} is too short to estimate the mean for shift={shift}: "
                             f"use warmup >= {math.ceil((16 / 0.75 / self.shift) ** 2)}")
        sides = 2 if self.polarity == "both" else 1
        self.h = max(math.log(sides * arl * self.shift**2 / 2) - 1.166 * self.shift, 1.0) / slack
        super().__init__()

    def _reset(self) -> None:
        self.n = 0
        self._restart()

    def _restart(self) -> None:
        self._count = 0
        self._mean = 0.0
        self._m2 = 0.0
        self._up = 0.0
        self._down = 0.0
        self._ready = False
        self._sd = 1.0

    def update(self, x: float) -> DriftSignal | None:
        self.n += 1
        if not self._ready:
            self._count += 1
            d = x - self._mean
            self._mean += d / self._count
            self._m2 += d * (x - self._mean)
            if self._count >= self.warmup:
                self._sd = max(math.sqrt(self._m2 / (self._count - 1)), 1e-12)
                self._ready = True
            return None
        k = self.shift
        llr_z = k * (x - self._mean) / self._sd
        half = k * k / 2
        if self.polarity != "decrease":
            self._up = max(0.0, self._up + llr_z - half)
            if self._up > self.h:
                value = self._up
                self._restart()
                return DriftSignal(self.name, self.n, "cusum_llr", value, self.h, "increase")
        if self.polarity != "increase":
            self._down = max(0.0, self._down - llr_z - half)
            if self._down > self.h:
                value = self._down
                self._restart()
                return DriftSignal(self.name, self.n, "cusum_llr", value, self.h, "decrease")
        return None
