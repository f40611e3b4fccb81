"""Wasserstein-1 distance normalised by the reference spread, with a bootstrap-calibrated p-value."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy import special

from ._util import NumericReference, as_float, direction
from .base import PreparedTest, TestResult

__all__ = ["WassersteinTest"]


def wasserstein_sorted(ref_sorted: np.ndarray, cur_sorted: np.ndarray) -> float:
    """W1 between two samples given sorted: the integral of |F_ref - F_cur| (scipy's definition)."""
    allv = np.concatenate([ref_sorted, cur_sorted])
    allv.sort()
    deltas = np.diff(allv)
    u = np.searchsorted(ref_sorted, allv[:-1], side="right") / ref_sorted.size
    v = np.searchsorted(cur_sorted, allv[:-1], side="right") / cur_sorted.size
    return float(np.dot(np.abs(u - v), deltas))


class _PreparedWasserstein:
    """Null model fitted once per reference and window size.

    Calibration (bootstrap on the reference): ``B`` windows of ``m`` rows are resampled from the
    reference and their W1 to the reference is computed in one vectorised pass (every resampled value
    is a reference value, so the window's ECDF on the reference grid is a cumulative bincount). Under
    no drift ``W1(ref_n, cur_m) / sqrt(1/n + 1/m)`` and ``W1(ref_n, boot_m) * sqrt(m)`` have the same
    limit law (the integral of |Brownian bridge(F(x))|), so the bootstrap sample gives the null of the
    scaled statistic for any window size. A log-normal is fitted to the bootstrap sample (mean and SD of
    ``log t``) and its tail gives the p-value; a moment-fitted gamma had too light a tail (3-4x the
    nominal rate at p < 0.001). Measured (40 references x 500 null windows): the realised rate is
    1.0-1.5x nominal for normal features and 2-4x for heavy-tailed ones (log-normal, t3) at p < 0.01;
    the bootstrap cannot see beyond the reference's extremes, which dominate W1 (a permutation null
    from half-splits of the reference did no better). So the Wasserstein p-value is an approximate
    score; use ``ks`` (exact distribution-free null) when the budget must hold for any feature.
    """

    def __init__(self, reference: Any, window_size: int, n_bootstrap: int, seed: int) -> None:
        self.ref = NumericReference(reference)
        self.norm = max(self.ref.std, 1e-3)  # evidently's normalisation: W1 / max(std_ref, 0.001)
        ref = self.ref
        n, m, b = ref.n, max(int(window_size), 1), int(n_bootstrap)
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, n, size=(b, m))
        counts = np.bincount((idx + (np.arange(b) * n)[:, None]).ravel(), minlength=b * n).reshape(b, n)
        f_boot = np.cumsum(counts, axis=1)[:, :-1] / m
        f_ref = (np.arange(1, n) / n)[None, :]
        w = np.abs(f_boot - f_ref) @ np.diff(ref.sorted)
        logt = np.log(np.maximum(w * math.sqrt(m), 1e-300))
        self.log_mean = float(logt.mean())
        self.log_sd = max(float(logt.std()), 1e-6)

    def p_value(self, w_raw: float, m: int) -> float:
        t = w_raw / math.sqrt(1.0 / self.ref.n + 1.0 / m)
        if t <= 0:
            return 1.0
        return float(special.ndtr(-(math.log(t) - self.log_mean) / self.log_sd))

    def __call__(self, current: Any) -> TestResult:
        c = np.sort(as_float(current))
        if c.size == 0:
            return TestResult("wasserstein", 0.0, 1.0, 0.0, "increase")
        w = wasserstein_sorted(self.ref.sorted, c)
        eff = self.ref.effect(c)
        return TestResult("wasserstein", w / self.norm, self.p_value(w, c.size), eff, direction(eff))


class WassersteinTest(PreparedTest):
    """Wasserstein-1 distance divided by the reference standard deviation (as evidently's
    ``wasserstein`` stattest), with a p-value from a bootstrap null on the reference.

    A fixed cut such as ``W > 0.1`` fires on most small windows without drift; the calibrated
    p-value instead states how unusual the distance is for this reference and window size. For a
    location shift it is more powerful than KS (it weighs how far mass moved, not only the largest
    CDF gap).

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> ref, cur = rng.normal(0, 1, 2000), rng.normal(0.25, 1, 1000)
    >>> r = WassersteinTest()(ref, cur)
    >>> round(r.statistic, 3), r.p_value < 1e-4, r.direction
    (0.232, True, 'increase')
    """

    name = "wasserstein"
    kind = "numeric"

    def __init__(self, n_bootstrap: int = 400, seed: int = 0) -> None:
        if n_bootstrap < 50:
            raise ValueError(f"n_bootstrap must be >= 50 to fit the null, got {n_bootstrap}")
        self.n_bootstrap = int(n_bootstrap)
        self.seed = int(seed)

    def prepare(self, reference: Any, window_size: int | None = None) -> _PreparedWasserstein:
        m = window_size if window_size is not None else max(as_float(reference).size // 2, 1)
        return _PreparedWasserstein(reference, m, self.n_bootstrap, self.seed)

    def __repr__(self) -> str:
        return f"WassersteinTest(n_bootstrap={self.n_bootstrap}, seed={self.seed})"
