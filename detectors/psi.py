"""Population stability index on reference-quantile bins, with an asymptotic p-value."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special

from ._util import NumericReference, as_float, direction, psi_from_shares
from .base import PreparedTest, TestResult

__all__ = ["PSITest", "psi_p_value"]


def psi_p_value(psi: float, n: int, m: int, bins: int) -> float:
    """Under no drift ``PSI / (1/n + 1/m)`` is asymptotically chi-square with ``bins - 1`` degrees of
    freedom (PSI = sum (q-p) ln(q/p) ~ sum (q-p)^2 / p to second order, the two-sample chi-square)."""
    if bins < 2:
        return 1.0
    return float(special.chdtrc(bins - 1, psi / (1.0 / n + 1.0 / m)))


class _PreparedPSI:
    def __init__(self, reference: Any, bins: int) -> None:
        self.ref = NumericReference(reference)
        qs = np.linspace(0, 1, bins + 1)[1:-1]
        self.edges = np.unique(np.quantile(self.ref.sorted, qs))
        self.k = self.edges.size + 1
        self.p = (
            np.bincount(np.searchsorted(self.edges, self.ref.sorted, side="right"), minlength=self.k)
            / self.ref.n
        )

    def __call__(self, current: Any) -> TestResult:
        c = as_float(current)
        if c.size == 0:
            return TestResult("psi", 0.0, 1.0, 0.0, "increase")
        q = np.bincount(np.searchsorted(self.edges, c, side="right"), minlength=self.k) / c.size
        psi = psi_from_shares(self.p, q)
        eff = self.ref.effect(c)
        return TestResult("psi", psi, psi_p_value(psi, self.ref.n, c.size, self.k), eff, direction(eff))


class PSITest(PreparedTest):
    """PSI of a numeric feature over ``bins`` equal-frequency bins cut at reference quantiles.

    Bins are right-closed at the reference quantiles (``searchsorted(side="right")``); tied quantiles
    (discrete features) are merged, so there are at most ``bins`` bins. Empty bins: shares are floored
    at 1e-4 (evidently's replacement for zero) so the value stays finite. The p-value is asymptotic
    (``PSI / (1/n + 1/m) ~ chi2(bins - 1)``), which is why a fixed cut like PSI > 0.1 is a different
    false-alarm rate for every window size.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> r = PSITest()(rng.normal(0, 1, 2000), rng.normal(0.5, 1, 1000))
    >>> round(r.statistic, 3), r.p_value < 1e-10, r.direction
    (0.224, True, 'increase')
    """

    name = "psi"
    kind = "numeric"

    def __init__(self, bins: int = 10) -> None:
        if bins < 2:
            raise ValueError(f"bins must be >= 2, got {bins}")
        self.bins = int(bins)

    def prepare(self, reference: Any, window_size: int | None = None) -> _PreparedPSI:
        return _PreparedPSI(reference, self.bins)

    def __repr__(self) -> str:
        return f"PSITest(bins={self.bins})"
