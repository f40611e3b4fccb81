"""Chi-square test of homogeneity for categorical features."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from scipy import special

from ._util import PreparedCounts
from .base import PreparedTest

__all__ = ["Chi2Test"]


def chi2_counts(r: np.ndarray, c: np.ndarray, method: str) -> tuple[float, float]:
    """Statistic and p-value from aligned category counts of reference ``r`` and current ``c``."""
    n, m = r.sum(), c.sum()
    if n == 0 or m == 0:
        return 0.0, 1.0
    if method == "contingency":
        keep = (r + c) > 0
        r, c = r[keep], c[keep]
        pooled = (r + c) / (n + m)
        er, ec = pooled * n, pooled * m
        stat = float(np.sum((r - er) ** 2 / er) + np.sum((c - ec) ** 2 / ec))
        dof = r.size - 1
    else:  # goodness of fit of the current counts to the reference shares
        seen = r > 0
        expected = r[seen] / n * c[seen].sum()
        stat = float(np.sum((c[seen] - expected) ** 2 / expected))
        dof = int(seen.sum()) - 1
        if (c[~seen] > 0).any():  # categories unseen in the reference: impossible under H0
            return float("inf"), 0.0
    if dof < 1:
        return 0.0, 1.0
    return stat, float(special.chdtrc(dof, stat))


class _PreparedChi2(PreparedCounts):
    name = "chi2"

    def __init__(self, reference: Any, method: str) -> None:
        super().__init__(reference)
        self.method = method

    def _statistic(self, r: np.ndarray, c: np.ndarray) -> tuple[float, float]:
        return chi2_counts(r, c, self.method)


class Chi2Test(PreparedTest):
    """Chi-square test that the reference and current windows share one category distribution.

    ``method="contingency"`` (default) is the two-sample test of homogeneity on the 2 x k table over
    the union of categories (no continuity correction; equals ``scipy.stats.chi2_contingency(...,
    correction=False)``): it accounts for the reference being a sample too, and a category unseen in
    the reference is simply a column with reference count 0. ``method="goodness_of_fit"`` tests the
    current counts against the reference shares (evidently's ``chisquare`` stattest); there a category
    unseen in the reference makes the statistic infinite (p = 0). Missing values (None/NaN) are not a
    category. The effect is the share change of the category that moved most.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> ref = rng.choice(["a", "b", "c"], 2000, p=[0.5, 0.3, 0.2])
    >>> cur = rng.choice(["a", "b", "c"], 1000, p=[0.4, 0.3, 0.3])
    >>> r = Chi2Test()(ref, cur)
    >>> r.p_value < 1e-6, r.category, r.direction, round(r.effect, 2)
    (True, 'a', 'decrease', -0.1)
    """

    name = "chi2"
    kind = "categorical"

    def __init__(self, method: Literal["contingency", "goodness_of_fit"] = "contingency") -> None:
        if method not in ("contingency", "goodness_of_fit"):
            raise ValueError(f"method must be 'contingency' or 'goodness_of_fit', got {method!r}")
        self.method = method

    def prepare(self, reference: Any, window_size: int | None = None) -> _PreparedChi2:
        return _PreparedChi2(reference, self.method)

    def __repr__(self) -> str:
        return f"Chi2Test(method={self.method!r})"
