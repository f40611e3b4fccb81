"""Shared helpers for the window tests: missing values, effect sizes, category counting."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from .base import Direction, TestResult

__all__: list[str] = []

#: Floor applied to bin/category shares in PSI (and optionally JS) so that empty bins give a finite
#: value. 1e-4 is evidently's replacement for an exact zero; with windows of at most 10,000 rows every
#: non-empty share is >= 1e-4, so flooring equals evidently's replacement.
SHARE_FLOOR = 1e-4


def as_float(values: Any) -> np.ndarray:
    """Non-missing values of a numeric column (NaN / None / inf dropped)."""
    x = np.asarray(values, dtype=float).ravel()
    return x[np.isfinite(x)]


def direction(effect: float) -> Direction:
    return "decrease" if effect < 0 else "increase"


def is_missing(v: object) -> bool:
    return v is None or (isinstance(v, float) and v != v)


def count_categories(values: Any) -> Counter:
    """Counts of the non-missing categories of a column (None / NaN are missing)."""
    c = Counter(np.asarray(values, dtype=object).ravel().tolist())
    for k in [k for k in c if is_missing(k)]:
        del c[k]
    return c


def aligned_counts(ref: Counter, cur: Counter) -> tuple[list[object], np.ndarray, np.ndarray]:
    """Counts of both windows over the union of categories: reference categories first (in their
    order), then categories unseen in the reference (count 0 there)."""
    cats = list(ref) + [k for k in cur if k not in ref]
    r = np.fromiter((ref.get(k, 0) for k in cats), dtype=float, count=len(cats))
    c = np.fromiter((cur.get(k, 0) for k in cats), dtype=float, count=len(cats))
    return cats, r, c


def category_effect(cats: list[object], r: np.ndarray, c: np.ndarray) -> tuple[float, str | None]:
    """The category whose share moved most, and its signed share change (current - reference)."""
    if r.sum() == 0 or c.sum() == 0:
        return 0.0, None
    d = c / c.sum() - r / r.sum()
    i = int(np.argmax(np.abs(d)))
    return float(d[i]), str(cats[i])


def psi_from_shares(p: np.ndarray, q: np.ndarray, floor: float = SHARE_FLOOR) -> float:
    """Population stability index sum((q - p) * ln(q / p)) with shares floored at ``floor``."""
    p = np.maximum(p, floor)
    q = np.maximum(q, floor)
    return float(np.sum((q - p) * np.log(q / p)))


class NumericReference:
    """A numeric reference sample prepared once: sorted values, mean and spread."""

    __slots__ = ("sorted", "n", "mean", "std", "right")

    def __init__(self, reference: Any) -> None:
        r = np.sort(as_float(reference))
        if r.size < 2:
            raise ValueError("reference must hold at least 2 non-missing values")
        self.sorted = r
        self.n = int(r.size)
        self.mean = float(r.mean())
        self.std = float(r.std())
        # ECDF of the reference at its own points (right-continuous, ties handled)
        self.right = np.searchsorted(r, r, side="right") / self.n

    def __getstate__(self) -> dict:
        return {k: getattr(self, k) for k in self.__slots__}

    def __setstate__(self, state: dict) -> None:
        for k, v in state.items():
            setattr(self, k, v)

    def effect(self, cur: np.ndarray) -> float:
        """Mean shift of ``cur`` in reference standard deviations."""
        if cur.size == 0:
            return 0.0
        return float((cur.mean() - self.mean) / max(self.std, 1e-12))


def merge_rare(r: np.ndarray, c: np.ndarray, min_expected: float = 10.0) -> tuple[np.ndarray, np.ndarray]:
    """Counts with the categories whose expected count (pooled share x the smaller window) is below
    ``min_expected`` merged into one bin: the asymptotic chi-square null of PSI and Jensen-Shannon needs
    it (with hundreds of rare categories their raw p-values reject far too often)."""
    pooled = r + c
    keep = pooled > 0
    r, c, pooled = r[keep], c[keep], pooled[keep]
    rare = pooled / pooled.sum() * min(r.sum(), c.sum()) < min_expected
    if rare.sum() < 1 or rare.all():
        return r, c
    return np.r_[r[~rare], r[rare].sum()], np.r_[c[~rare], c[rare].sum()]


class PreparedCounts:
    """A categorical test prepared on its reference: the reference is counted once, then each window
    (raw values, or counts via :meth:`test_counts`) is aligned with it; an empty side tests as no
    drift. Subclasses set ``name`` and compute ``(statistic, p_value)`` from aligned counts."""

    name = "categorical"

    def __init__(self, reference: Any) -> None:
        self.counts = count_categories(reference)

    def _statistic(self, r: np.ndarray, c: np.ndarray) -> tuple[float, float]:
        raise NotImplementedError

    def test_counts(self, cur: Counter[Any]) -> TestResult:
        cats, r, c = aligned_counts(self.counts, cur)
        if r.sum() == 0 or c.sum() == 0:
            return TestResult(self.name, 0.0, 1.0, 0.0, "increase")
        stat, p_value = self._statistic(r, c)
        eff, cat = category_effect(cats, r, c)
        return TestResult(self.name, stat, p_value, eff, direction(eff), cat)

    def __call__(self, current: Any) -> TestResult:
        return self.test_counts(count_categories(current))
