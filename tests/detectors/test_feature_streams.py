"""A batch's ranks and buckets are found in bulk (values searched in sorted order, categories mapped
in one pass): each row still gets exactly what it would get alone."""

from __future__ import annotations

import numpy as np
import pytest

from detectors._util import is_missing
from detectors.feature_streams import CategoryShares, mid_ranks


def _alone(sorted_ref: np.ndarray, v: float) -> float:
    """One value's mid-rank, counted: the references below it, plus half of those equal to it."""
    if v != v:  # NaN: after every reference value, as numpy sorts it
        return float(sorted_ref.size)
    return float((sorted_ref < v).sum() + 0.5 * (sorted_ref == v).sum())


@pytest.mark.parametrize("ties", [False, True])
def test_a_batchs_mid_ranks_are_each_values_own(ties: bool) -> None:
    rng = np.random.default_rng(3)
    for size in (0, 1, 63, 64, 65, 500, 3000):
        if ties:
            ref, x = rng.integers(0, 7, 400).astype(float), rng.integers(-1, 9, size).astype(float)
        else:
            ref, x = rng.normal(size=400), rng.normal(size=size)
        ref = np.sort(ref)
        u = rng.random(size)
        x[u < 0.05], x[(u >= 0.05) & (u < 0.07)], x[(u >= 0.07) & (u < 0.09)] = np.nan, np.inf, -np.inf
        got = mid_ranks(ref, x)
        assert got.tolist() == [_alone(ref, v) for v in x.tolist()]
        assert np.array_equal(got, mid_ranks(ref, x, unique=not ties))


def test_a_batchs_buckets_are_each_values_own() -> None:
    rng = np.random.default_rng(5)
    pool = np.array(["a", "b", "c", "zz", "", "é", None, float("nan"), 1, 1.0, True], dtype=object)
    for size in (0, 10, 64, 2000):
        shares = CategoryShares(pool[rng.integers(0, 6, 300)], min_share=0.1)
        x = pool[rng.integers(0, pool.size, size)]
        kept, other = shares.names[:-1], len(shares.names) - 1
        alone = [-1 if is_missing(v) else kept.index(v) if v in kept else other for v in x]
        assert shares.codes(x).tolist() == alone
