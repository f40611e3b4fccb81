"""Bernoulli CUSUM for error streams, its threshold derived from a false-alarm budget."""

from __future__ import annotations

import math
from typing import Any

from ._polarity import Polarity, check_int, check_polarity
from .base import DriftSignal, StreamDetector
from .calibration import arl_from_budget

__all__ = ["BernoulliCUSUM"]


class BernoulliCUSUM(StreamDetector):
    """Log-likelihood-ratio CUSUM for a 0/1 stream (e.g. prediction errors): Driftline's recommended
    detector for error-rate increases. The first ``warmup`` events estimate the in-control rate ``p0``
    (unless given); the estimate keeps growing with every event and the thresholds are refreshed every
    ``warmup`` events. Two designs run on each watched side: odds of ``p0`` times ``odds_ratio`` (small
    and gradual increases) and times ``fast_odds_ratio`` (large jumps, found in a few events).
    Calibration is analytic: an LLR CUSUM whose in-control increments have mean ``-KL(p0 || p1)`` has
    average run length ``ARL0 ~ e^(h + overshoot) / KL`` (Siegmund's approximation; dropping the
    overshoot errs on the safe side), so ``h = ln(ARL0 * KL)`` with ``ARL0 = 100_000 /
    false_alarms_per_100k`` times the number of statistics (each design and side gets an equal share of
    the budget; Lorden's bound ``ARL0 >= e^h`` would give a larger, slower ``h``). ``h`` is then raised
    so that the budget holds on average over the estimation error of ``p0`` (while the baseline is too
    short for that, ``p0`` is moved two standard errors towards the alarm side instead). After an alarm
    a new warm-up starts (the new error rate becomes the new normal). ``polarity="decrease"`` watches
    ``1 - x``; ``"both"`` runs both sides.

    >>> import numpy as np
    >>> rng = np.random.default_rng(7)
    >>> errors = np.r_[rng.random(2000) < 0.1, rng.random(2000) < 0.3].astype(float)
    >>> [(s.index, s.direction) for s in BernoulliCUSUM().update_many(errors)]
    [(2076, 'increase')]
    """

    name = "bernoulli_cusum"

    def __init__(
        self,
        false_alarms_per_100k: float = 0.5,
        odds_ratio: float = 2.0,
        fast_odds_ratio: float | None = 20.0,
        warmup: int = 1000,
        p0: float | None = None,
        polarity: Polarity = "increase",
    ) -> None:
        arl = arl_from_budget(false_alarms_per_100k)
        if odds_ratio <= 1:
            raise ValueError(f"odds_ratio must be > 1, got {odds_ratio}")
        if fast_odds_ratio is not None and fast_odds_ratio <= odds_ratio:
            raise ValueError(
                f"fast_odds_ratio must be > odds_ratio ({odds_ratio}) or None, got {fast_odds_ratio}"
            )
        if p0 is not None and not 0 < p0 < 1:
            raise ValueError(f"p0 must be in (0, 1) or None, got {p0}")
        self.false_alarms_per_100k = float(false_alarms_per_100k)
        self.odds_ratio = float(odds_ratio)
        self.fast_odds_ratio = None if fast_odds_ratio is None else float(fast_odds_ratio)
        self.warmup = check_int("warmup", warmup, 10)
        self.p0 = p0
        self.polarity = check_polarity(polarity)
        self._ratios = (
            (self.odds_ratio,) if self.fast_odds_ratio is None else (self.odds_ratio, self.fast_odds_ratio)
        )
        sides = (
            ("increase",)
            if self.polarity == "increase"
            else ("decrease",)
            if self.polarity == "decrease"
            else ("increase", "decrease")
        )
        self._sides = sides
        # every (side, design) statistic gets an equal share of the budget: ARL0 scaled by their number
        self._arl = len(sides) * len(self._ratios) * arl
        super().__init__()

    def _reset(self) -> None:
        self.n = 0
        self._restart()

    def _restart(self) -> None:
        self._count = 0
        self._ones = 0.0
        # one CUSUM per (side, design):
        # [statistic, increment if x=1, increment if x=0, threshold, side, events and ones since it left 0]
        self._stats: list[list[Any]] = []
        self.h = float("nan")
        self.p0_estimate = float("nan")
        if self.p0 is not None:
            self._set_p0(self.p0, exact=True)

    def _set_p0(self, p0: float, exact: bool = False) -> None:
        n = self._count
        stats: list[list[Any]] = []
        for side in self._sides:
            for ratio in self._ratios:
                q0 = p0 if side == "increase" else 1 - p0  # the decrease side watches 1 - x
                # the estimate's error e ~ N(0, q0 (1 - q0) / n) moves the in-control drift by
                # e * ln(ratio); keeping the budget on average over e means h - c h^2 = h0 (as in the
                # Gaussian CUSUM) with c = 2 / (n q0 (1 - q0) ln(ratio)^2). While the baseline is too
                # short for a solution, q0 is moved two standard errors towards the alarm side instead.
                c = 0.0 if exact else 2 / (n * q0 * (1 - q0) * math.log(ratio) ** 2)
                h0, a1, a0 = self._design(q0, ratio)
                if c > 0 and 4 * c * h0 >= 1:
                    q0 = min(q0 + 2 * math.sqrt(q0 * (1 - q0) / n), 0.999)
                    h0, a1, a0 = self._design(q0, ratio)
                    h = h0
                else:
                    h = (1 - math.sqrt(1 - 4 * c * h0)) / (2 * c) if c > 0 else h0
                if side == "decrease":
                    a1, a0 = a0, a1  # increments indexed by x, not by 1 - x
                stats.append([0.0, a1, a0, h, side, 0.0, 0.0])
        self._stats = stats
        self.h = float(stats[0][3])
        self.p0_estimate = p0

    def _design(self, q0: float, ratio: float) -> tuple[float, float, float]:
        """Threshold for a known ``q0`` and the LLR increments for x = 1 / x = 0."""
        odds = q0 / (1 - q0) * ratio
        q1 = odds / (1 + odds)
        a1, a0 = math.log(q1 / q0), math.log((1 - q1) / (1 - q0))
        kl = -(q0 * a1 + (1 - q0) * a0)  # in-control drift per event
        return max(math.log(self._arl * kl), 1.0), a1, a0

    def update(self, x: float) -> DriftSignal | None:
        self.n += 1
        self._count += 1
        self._ones += x
        stats = self._stats
        if not stats:
            if self._count >= self.warmup:
                self._refresh()
            return None
        i = 1 if x >= 0.5 else 2
        for st in stats:
            v = st[0] + st[i]
            if v <= 0.0:
                st[0] = st[5] = st[6] = 0.0
            elif v > st[3]:
                baseline, recent = self.p0_estimate, (st[6] + x) / (st[5] + 1)
                self._restart()
                return DriftSignal(self.name, self.n, "cusum_llr", v, st[3], st[4], baseline, recent)
            else:
                st[0] = v
                st[5] += 1  # events and ones since the statistic left zero: the recent level
                st[6] += x
        if self.p0 is None and self._count % self.warmup == 0:
            self._refresh()
        return None

    def _refresh(self) -> None:
        """Re-estimate ``p0`` from every event since the last (re)start, keeping the statistics."""
        old = [(st[0], st[5], st[6]) for st in self._stats]
        self._set_p0(min(max((self._ones + 1) / (self._count + 2), 0.001), 0.999))
        for st, (v, k, ones) in zip(self._stats, old, strict=False):
            st[0], st[5], st[6] = v, k, ones
