"""CUSUM on a real-valued error stream (a regression model's absolute residuals), distribution-free.

Residuals are rarely Gaussian: absolute residuals are skewed, and heavy tails are common. A Gaussian
CUSUM fed raw absolute residuals alarms far more often than its budget says (its threshold assumes
Gaussian increments); see ``benchmarks/detection_tasks.py`` for the measurement. This detector first
keeps ``warmup`` values as its reference, then maps every later value to its normal score against that
reference (``Phi^-1`` of its mid-rank among the reference values), which is close to N(0, 1) whatever
the residuals' distribution while it does not change, and runs :class:`GaussianCUSUM`'s statistics on
the scores with a known mean 0 and SD 1. The threshold keeps the budget on average over the
reference's own sampling error (the Gaussian CUSUM's estimation margin for a baseline of ``warmup``
events). After an alarm a new reference is taken.
"""

from __future__ import annotations

import bisect
import math
from statistics import NormalDist

from ._polarity import Polarity, check_int
from .calibration import DEFAULT_FALSE_ALARMS_PER_100K
from .gaussian_cusum import GaussianCUSUM, _estimation_margin, _ShiftStatistic

__all__ = ["ResidualCUSUM"]


class ResidualCUSUM(GaussianCUSUM):
    """Gaussian CUSUM on normal scores against a reference of the first ``warmup`` values: a change of
    a real-valued stream's level (by default an increase: errors growing) found within its budget for
    any continuous distribution. Reports levels (``baseline``, ``current``) in the stream's own units.

    >>> import numpy as np
    >>> rng = np.random.default_rng(7)
    >>> residuals = np.abs(np.r_[rng.standard_t(3, 3000), 1.5 * rng.standard_t(3, 1000)])
    >>> [(s.index, s.direction) for s in ResidualCUSUM().update_many(residuals)]
    [(3110, 'increase')]
    """

    name = "residual_cusum"
    _learning = False  # the reference is fixed until the next alarm

    def __init__(
        self,
        false_alarms_per_100k: float = DEFAULT_FALSE_ALARMS_PER_100K,
        shift: float = 0.25,
        fast_shift: float | None = 0.75,
        warmup: int = 1000,
        polarity: Polarity = "increase",
    ) -> None:
        check_int("warmup", warmup, 100)
        super().__init__(false_alarms_per_100k, shift, fast_shift, warmup, polarity)

    def _start(self) -> None:
        super()._start()
        self._reference: list[float] = []
        self._scores: list[float] = []
        self._ref_sum = 0.0

    def _observe(self, x: float) -> None:
        if self._count <= self.warmup:
            self._reference.append(x)
            self._ref_sum += x

    def _calibrate(self) -> list[_ShiftStatistic]:
        """Sort the reference and tabulate the normal score of every mid-rank ``j / 2`` among it."""
        ref = self._reference
        ref.sort()
        n = len(ref)
        inv = NormalDist().inv_cdf
        self._scores = [inv((j / 2 + 0.5) / (n + 1)) for j in range(2 * n + 1)]
        stats = []
        for side in self._sides:
            sign = 1.0 if side == "increase" else -1.0
            for k in self._shifts:
                h0 = max(math.log(self._arl * k * k / 2), 1.0)
                h = _estimation_margin(h0, k, n)
                stats.append(_ShiftStatistic(threshold=h, direction=side, slope=sign * k, drift=k * k / 2))
        return stats

    def _add_increments(self, x: float) -> None:
        ref = self._reference
        z = self._scores[bisect.bisect_left(ref, x) + bisect.bisect_right(ref, x)]
        for st in self._stats:
            st.value = st.value + st.slope * z - st.drift

    def _baseline(self, run_events: int, run_sum: float) -> float:
        """The reference's mean, in the stream's units."""
        return self._ref_sum / max(len(self._reference), 1)
