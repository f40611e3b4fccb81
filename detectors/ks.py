"""Two-sample Kolmogorov-Smirnov test for numeric features."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import special

from ._util import NumericReference, as_float, direction
from .base import PreparedTest, TestResult

__all__ = ["KSTest"]


def ks_p_value(d: float, n: int, m: int) -> float:
    """Asymptotic two-sided p-value of the two-sample KS statistic ``d``.

    Uses the Kolmogorov distribution at ``(sqrt(en) + 0.12 + 0.11 / sqrt(en)) * d`` with
    ``en = n m / (n + m)`` (Stephens' finite-sample correction): a vectorised ufunc, ~1 µs, and within
    a few percent of scipy's ``kstwo`` p-value in the tail that matters for alarms (p < 0.05).
    """
    en = n * m / (n + m)
    s = math.sqrt(en)
    return float(special.kolmogorov((s + 0.12 + 0.11 / s) * d))


class _PreparedKS:
    def __init__(self, reference: Any) -> None:
        self.ref = NumericReference(reference)

    def __call__(self, current: Any) -> TestResult:
        ref = self.ref
        c = np.sort(as_float(current))
        m = c.size
        if m == 0:
            return TestResult("ks", 0.0, 1.0, 0.0, "increase")
        # both ECDFs at every point of both samples (side="right" handles ties as scipy does)
        d1 = np.abs(
            np.searchsorted(ref.sorted, c, side="right") / ref.n - np.searchsorted(c, c, side="right") / m
        ).max()
        d2 = np.abs(ref.right - np.searchsorted(c, ref.sorted, side="right") / m).max()
        d = float(max(d1, d2))
        eff = ref.effect(c)
        return TestResult("ks", d, ks_p_value(d, ref.n, m), eff, direction(eff))


class KSTest(PreparedTest):
    """Two-sample Kolmogorov-Smirnov test: statistic ``D = sup |F_ref - F_cur|``, asymptotic p-value.

    The null distribution of ``D`` is known (distribution-free), so no calibration run is needed: a
    false-alarm budget maps to a significance level directly. The effect is the mean shift in
    reference standard deviations.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> ref, cur = rng.normal(0, 1, 2000), rng.normal(0.5, 1, 1000)
    >>> r = KSTest()(ref, cur)
    >>> round(r.statistic, 3), r.p_value < 1e-10, r.direction, round(r.effect, 2)
    (0.194, True, 'increase', 0.48)
    """

    name = "ks"
    kind = "numeric"

    def prepare(self, reference: Any, window_size: int | None = None) -> _PreparedKS:
        """Sort the reference once; the result tests windows: ``prepared(current) -> TestResult``."""
        return _PreparedKS(reference)

    def __repr__(self) -> str:
        return "KSTest()"
