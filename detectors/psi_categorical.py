"""Population stability index over categories, with an asymptotic p-value."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._util import SHARE_FLOOR, PreparedCounts, merge_rare, psi_from_shares
from .base import PreparedTest
from .psi import psi_p_value

__all__ = ["CategoricalPSITest"]


class _PreparedCatPSI(PreparedCounts):
    name = "psi_categorical"

    def __init__(self, reference: Any, floor: float) -> None:
        super().__init__(reference)
        self.floor = floor

    def _statistic(self, r: np.ndarray, c: np.ndarray) -> tuple[float, float]:
        n, m = r.sum(), c.sum()
        psi = psi_from_shares(r / n, c / m, self.floor)
        rm, cm = merge_rare(r, c)  # the asymptotic null needs expected counts >= 5: merge rare ones
        k = rm.size
        psi_k = psi_from_shares(rm / n, cm / m, self.floor) if k < r.size else psi
        return psi, psi_p_value(psi_k, int(n), int(m), k)


class CategoricalPSITest(PreparedTest):
    """PSI over the union of categories. A category unseen in the reference (or vanished from the
    current window) has share 0 on one side; shares are floored at ``floor`` (1e-4, evidently's
    replacement for zero) so its term is finite but large: an unseen category with a 10% share adds
    about 0.1 * ln(0.1 / 1e-4) = 0.69. The p-value is asymptotic: ``PSI / (1/n + 1/m) ~ chi2(k - 1)``,
    computed after merging categories with an expected count below 10 into one (the statistic keeps all).

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> ref = rng.choice(["a", "b", "c"], 2000, p=[0.5, 0.3, 0.2])
    >>> cur = rng.choice(["a", "b", "c"], 1000, p=[0.3, 0.3, 0.4])
    >>> r = CategoricalPSITest()(ref, cur)
    >>> round(r.statistic, 3), r.p_value < 1e-6, r.category, r.direction
    (0.236, True, 'a', 'decrease')
    """

    name = "psi_categorical"
    kind = "categorical"

    def __init__(self, floor: float = SHARE_FLOOR) -> None:
        if not 0 < floor < 0.01:
            raise ValueError(f"floor must be in (0, 0.01), got {floor}")
        self.floor = float(floor)

    def prepare(self, reference: Any, window_size: int | None = None) -> _PreparedCatPSI:
        return _PreparedCatPSI(reference, self.floor)

    def __repr__(self) -> str:
        return f"CategoricalPSITest(floor={self.floor})"
