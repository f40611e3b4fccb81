"""Bernoulli CUSUM for error streams, its threshold derived from a false-alarm budget."""

from __future__ import annotations

import math

from ._polarity import Polarity, check_int, check_polarity
from .base import DriftSignal, StreamDetector
from .calibration import arl_from_budget

__all__ = ["BernoulliCUSUM"]


class BernoulliCUSUM(StreamDetector):
    """Log-likelihood-ratio CUSUM for a 0/1 stream (e.g. prediction errors): Driftline's recommended
    detector for error-rate increases.

    The first ``warmup`` events estimate the in-control rate ``p0`` (unless given); the CUSUM then
    accumulates the log-likelihood ratio of ``p1`` (odds of ``p0`` times ``odds_ratio``) against ``p0``
    and alarms when it exceeds ``h``. Calibration is analytic: an LLR CUSUM whose in-control increments
    have mean ``-KL(p0 || p1)`` has in-control average run length ``ARL0 ~ e^(h + overshoot) / KL``
    (Siegmund's approximation; dropping the overshoot errs on the safe side), so ``h = ln(ARL0 * KL)``
    with ``ARL0 = 100_000 / false_alarms_per_100k`` meets the budget (Lorden's bound ``ARL0 >= e^h``
    would give a larger, slower ``h``). The estimated ``p0`` is raised by two standard errors first, so
    that an under-estimate from a short warm-up does not eat the budget. After an alarm the detector
    starts a new warm-up (the new error rate becomes the new normal). ``polarity="decrease"`` watches
    the complement ``1 - x``; ``"both"`` runs both sides with half the budget each.

    >>> import numpy as np
    >>> rng = np.random.default_rng(7)
    >>> errors = np.r_[rng.random(2000) < 0.1, rng.random(2000) < 0.3].astype(float)
    >>> [(s.index, s.direction) for s in BernoulliCUSUM().update_many(errors)]
    [(2061, 'increase')]
    """

    name = "bernoulli_cusum"

    def __init__(self, false_alarms_per_100k: float = 0.5, odds_ratio: float = 3.0, warmup: int = 1000,
                 p0: float | None = None, polarity: Polarity = "increase") -> None:
        arl = arl_from_budget(false_alarms_per_100k)
        if odds_ratio <= 1:
            raise ValueError(f"odds_ratio must be > 1, got {odds_ratio}")
        if p0 is not None and not 0 < p0 < 1:
            raise ValueError(f"p0 must be in (0, 1) or None, got {p0}")
        self.false_alarms_per_100k = float(false_alarms_per_100k)
        self.odds_ratio = float(odds_ratio)
        self.warmup = check_int("warmup", warmup, 10)
        self.p0 = p0
        self.polarity = check_polarity(polarity)
        self._arl = (2 if self.polarity == "both" else 1) * arl
        super().__init__()

    def _weights(self, p0: float) -> tuple[float, float]:
        odds = p0 / (1 - p0) * self.odds_ratio
        p1 = odds / (1 + odds)
        return math.log(p1 / p0), math.log((1 - p1) / (1 - p0))

    def _reset(self) -> None:
        self.n = 0
        self._restart()

    def _restart(self) -> None:
        self._count = 0
        self._ones = 0.0
        self._up = 0.0
        self._down = 0.0
        self._w: tuple[float, float, float, float] | None = None
        self.h = float("nan")
        self.p0_estimate = float("nan")
        if self.p0 is not None:
            self._set_p0(self.p0, exact=True)

    def _set_p0(self, p0: float, exact: bool = False) -> None:
        if not exact:  # protect the budget against an under-estimate: two standard errors up/down
            se = math.sqrt(p0 * (1 - p0) / self._count)
            hi, lo = min(p0 + 2 * se, 0.999), max(p0 - 2 * se, 0.001)
        else:
            hi = lo = p0
        a1, a0 = self._weights(hi)  # increase: x=1 / x=0 increments
        b1, b0 = self._weights(1 - lo)  # decrease: increments for 1 - x
        kl = min(-(hi * a1 + (1 - hi) * a0), -((1 - lo) * b1 + lo * b0))  # in-control drift per event
        self.h = max(math.log(self._arl * kl), 1.0)
        self.p0_estimate = p0
        self._w = (a1, a0, b1, b0)

    def update(self, x: float) -> DriftSignal | None:
        self.n += 1
        w = self._w
        if w is None:
            self._count += 1
            self._ones += x
            if self._count >= self.warmup:
                self._set_p0(min(max((self._ones + 1) / (self._count + 2), 0.001), 0.999))
            return None
        one = x >= 0.5
        pol = self.polarity
        if pol != "decrease":
            self._up = max(0.0, self._up + (w[0] if one else w[1]))
            if self._up > self.h:
                value, h = self._up, self.h
                self._restart()
                return DriftSignal(self.name, self.n, "cusum_llr", value, h, "increase")
        if pol != "increase":
            self._down = max(0.0, self._down + (w[3] if one else w[2]))
            if self._down > self.h:
                value, h = self._down, self.h
                self._restart()
                return DriftSignal(self.name, self.n, "cusum_llr", value, h, "decrease")
        return None
