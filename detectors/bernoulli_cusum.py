"""Bernoulli CUSUM for 0/1 streams, its threshold derived from a false-alarm budget."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ._cusum import CUSUM, CUSUMStatistic, solve_margin
from ._polarity import Polarity
from .base import Direction
from .calibration import DEFAULT_FALSE_ALARMS_PER_100K

__all__ = ["BernoulliCUSUM"]


@dataclass(slots=True, kw_only=True)
class _RateStatistic(CUSUMStatistic):
    """Adds ``if_one`` for x = 1 and ``if_zero`` for x = 0: the log-likelihood ratio of the alarm rate
    ``q1`` against the in-control rate ``q0`` (the decrease side's rates are those of ``1 - x``)."""

    if_one: float
    if_zero: float


class BernoulliCUSUM(CUSUM[_RateStatistic]):
    """Log-likelihood-ratio CUSUM for a 0/1 stream: Driftline's recommended detector for the share of a
    category (one per category of a categorical stream, see ``detectors/README.md``). For a model's error
    stream the recommendation is ``RECOMMENDED_ERROR_DETECTOR`` in :mod:`detectors.registry` (ADWIN, what
    the stream processor runs); this CUSUM finds error increases sooner on streams whose first ``warmup``
    events show the normal error rate (``benchmarks/detection.py``).

    The first ``warmup`` events estimate the in-control rate ``p0`` (unless given); the estimate keeps
    growing with every event and the thresholds are refreshed every ``warmup`` events. Two designs run on
    each watched side: odds of ``p0`` times ``odds_ratio`` (small and gradual increases) and times
    ``fast_odds_ratio`` (large jumps, found in a few events). Calibration is analytic: an LLR CUSUM whose
    in-control increments have mean ``-KL(p0 || p1)`` has average run length
    ``ARL0 ~ e^(h + overshoot) / KL`` (Siegmund's approximation; dropping the overshoot errs on the safe
    side), so ``h = ln(ARL0 * KL)`` with ``ARL0 = 100_000 / false_alarms_per_100k`` times the number of
    statistics (each design and side gets an equal share of the budget; Lorden's bound ``ARL0 >= e^h``
    would give a larger, slower ``h``). ``h`` is then raised so that the budget holds on average over the
    estimation error of ``p0`` (while the baseline is too short for that, ``p0`` is moved two standard
    errors towards the alarm side instead). After an alarm a new warm-up starts (the new error rate
    becomes the new normal). ``polarity="decrease"`` watches ``1 - x``; ``"both"`` runs both sides.

    >>> import numpy as np
    >>> rng = np.random.default_rng(7)
    >>> errors = np.r_[rng.random(2000) < 0.1, rng.random(2000) < 0.3].astype(float)
    >>> [(s.index, s.direction) for s in BernoulliCUSUM().update_many(errors)]
    [(2076, 'increase')]
    """

    name = "bernoulli_cusum"

    def __init__(
        self,
        false_alarms_per_100k: float = DEFAULT_FALSE_ALARMS_PER_100K,
        odds_ratio: float = 2.0,
        fast_odds_ratio: float | None = 20.0,
        warmup: int = 1000,
        p0: float | None = None,
        polarity: Polarity = "increase",
    ) -> None:
        if odds_ratio <= 1:
            raise ValueError(f"odds_ratio must be > 1, got {odds_ratio}")
        if fast_odds_ratio is not None and fast_odds_ratio <= odds_ratio:
            raise ValueError(
                f"fast_odds_ratio must be > odds_ratio ({odds_ratio}) or None, got {fast_odds_ratio}"
            )
        if p0 is not None and not 0 < p0 < 1:
            raise ValueError(f"p0 must be in (0, 1) or None, got {p0}")
        self.odds_ratio = float(odds_ratio)
        self.fast_odds_ratio = None if fast_odds_ratio is None else float(fast_odds_ratio)
        self.p0 = p0
        self._learning = p0 is None
        self._ratios = (
            (self.odds_ratio,) if self.fast_odds_ratio is None else (self.odds_ratio, self.fast_odds_ratio)
        )
        super().__init__(false_alarms_per_100k, warmup, polarity, len(self._ratios))

    def _start(self) -> None:
        self._ones = 0.0
        self.p0_estimate = float("nan")
        if self.p0 is not None:
            self._refresh()

    def _observe(self, x: float) -> None:
        self._ones += x

    def _calibrate(self) -> list[_RateStatistic]:
        """A statistic per (side, design) for ``p0`` if given, else for its estimate from every event since
        the last (re)start."""
        if self.p0 is not None:
            self.p0_estimate = self.p0
            return [self._statistic(side, self.p0, r, 0) for side in self._sides for r in self._ratios]
        n = self._count
        self.p0_estimate = p0 = min(max((self._ones + 1) / (n + 2), 0.001), 0.999)
        return [self._statistic(side, p0, r, n) for side in self._sides for r in self._ratios]

    def _statistic(self, side: Direction, p0: float, ratio: float, n: int) -> _RateStatistic:
        """The statistic for a rate ``p0`` estimated from ``n`` events (``n = 0``: ``p0`` is exact).

        The estimate's error e ~ N(0, q0 (1 - q0) / n) moves the in-control drift by e * ln(ratio); keeping
        the budget on average over e means h - c h^2 = h0 (as in the Gaussian CUSUM) with
        c = 2 / (n q0 (1 - q0) ln(ratio)^2). While the baseline is too short for a solution, q0 is moved
        two standard errors towards the alarm side instead.
        """
        q0 = p0 if side == "increase" else 1 - p0  # the decrease side watches 1 - x
        h, a1, a0 = self._design(q0, ratio)
        if n > 0:
            margin = solve_margin(h, 2 / (n * q0 * (1 - q0) * math.log(ratio) ** 2))
            if margin is None:
                q0 = min(q0 + 2 * math.sqrt(q0 * (1 - q0) / n), 0.999)
                h, a1, a0 = self._design(q0, ratio)
            else:
                h = margin
        if side == "decrease":
            a1, a0 = a0, a1  # increments indexed by x, not by 1 - x
        return _RateStatistic(threshold=h, direction=side, if_one=a1, if_zero=a0)

    def _design(self, q0: float, ratio: float) -> tuple[float, float, float]:
        """Threshold for a known ``q0`` and the LLR increments for x = 1 / x = 0."""
        odds = q0 / (1 - q0) * ratio
        q1 = odds / (1 + odds)
        a1, a0 = math.log(q1 / q0), math.log((1 - q1) / (1 - q0))
        kl = -(q0 * a1 + (1 - q0) * a0)  # in-control drift per event
        return max(math.log(self._arl * kl), 1.0), a1, a0

    def _add_increments(self, x: float) -> None:
        if x >= 0.5:
            for st in self._stats:
                st.value += st.if_one
        else:
            for st in self._stats:
                st.value += st.if_zero

    def _baseline(self, run_events: int, run_sum: float) -> float:
        return self.p0_estimate
