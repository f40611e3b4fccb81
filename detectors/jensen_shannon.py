"""Jensen-Shannon distance between category distributions, with an asymptotic p-value."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special

from ._util import PreparedCounts, merge_rare
from .base import PreparedTest

__all__ = ["JensenShannonTest"]


def js_distance(p: np.ndarray, q: np.ndarray) -> float:
    """sqrt of the Jensen-Shannon divergence (natural log), as ``scipy.spatial.distance.jensenshannon``."""
    p = p / p.sum()
    q = q / q.sum()
    mid = (p + q) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        kp = np.where(p > 0, p * np.log(p / mid), 0.0).sum()
        kq = np.where(q > 0, q * np.log(q / mid), 0.0).sum()
    return float(np.sqrt(max((kp + kq) / 2, 0.0)))


class _PreparedJS(PreparedCounts):
    name = "jensen_shannon"

    def __init__(self, reference: Any, floor: float) -> None:
        super().__init__(reference)
        self.floor = floor

    def _statistic(self, r: np.ndarray, c: np.ndarray) -> tuple[float, float]:
        n, m = r.sum(), c.sum()
        d = js_distance(np.maximum(r / n, self.floor), np.maximum(c / m, self.floor))
        # 8 * JSD ~ sum (p - q)^2 / mid  ->  8 * JSD / (1/n + 1/m) ~ chi2(k - 1) under no drift,
        # on categories with enough expected counts (rare ones merged; 300 Zipf categories: 1.5x nominal)
        rm, cm = merge_rare(r, c)
        k = rm.size
        dm = js_distance(rm / n, cm / m) if k < r.size else d
        return d, float(special.chdtrc(k - 1, 8 * dm * dm / (1 / n + 1 / m))) if k > 1 else 1.0


class JensenShannonTest(PreparedTest):
    """Jensen-Shannon distance (natural log, in [0, sqrt(ln 2)]) between the category shares over
    the union of categories; a category unseen in the reference has share 0 there, which JS handles
    without smoothing (``floor=0``; evidently floors zero shares at 1e-4: pass ``floor=1e-4`` to match).
    The p-value is asymptotic: ``8 JSD / (1/n + 1/m) ~ chi2(k - 1)``, computed after merging categories
    with an expected count below 10 into one (the statistic itself keeps every category).

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> ref = rng.choice(["a", "b", "c"], 2000, p=[0.5, 0.3, 0.2])
    >>> cur = rng.choice(["a", "b", "c", "new"], 1000, p=[0.5, 0.25, 0.1, 0.15])
    >>> r = JensenShannonTest()(ref, cur)
    >>> round(r.statistic, 3), r.p_value < 1e-6, r.category, r.direction
    (0.249, True, 'new', 'increase')
    """

    name = "jensen_shannon"
    kind = "categorical"

    def __init__(self, floor: float = 0.0) -> None:
        if not 0 <= floor < 0.01:
            raise ValueError(f"floor must be in [0, 0.01), got {floor}")
        self.floor = float(floor)

    def prepare(self, reference: Any, window_size: int | None = None) -> _PreparedJS:
        return _PreparedJS(reference, self.floor)

    def __repr__(self) -> str:
        return f"JensenShannonTest(floor={self.floor})"
