"""Window statistics agree with scipy and evidently 0.7 on seeded data."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import spatial, stats

from detectors import get_test
from detectors._util import psi_from_shares

ev = pytest.importorskip("evidently.legacy.calculations.stattests")
from evidently.legacy.core import ColumnType  # noqa: E402

SHIFTS = [0.0, 0.05, 0.1, 0.25, 0.5]


def numeric_pair(seed: int, shift: float, n: int = 2000, m: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.normal(0, 1, n), rng.normal(shift, 1.3 if shift else 1, m)


def categorical_pair(seed: int, unseen: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ref = rng.choice(["a", "b", "c", "d"], 2000, p=[0.4, 0.3, 0.2, 0.1]).astype(object)
    if unseen:
        cats, p = list("abcde"), [0.4, 0.3, 0.15, 0.05, 0.1]
    else:
        cats, p = list("abcd"), [0.38, 0.3, 0.17, 0.15]
    return ref, rng.choice(cats, 1000, p=p).astype(object)


@pytest.mark.parametrize("shift", SHIFTS)
@pytest.mark.parametrize("seed", [0, 1])
def test_ks_matches_scipy_and_evidently(seed: int, shift: float) -> None:
    ref, cur = numeric_pair(seed, shift)
    r = get_test("ks")(ref, cur)
    sp = stats.ks_2samp(ref, cur, method="asymp")
    assert r.statistic == pytest.approx(sp.statistic, abs=1e-12)
    assert r.p_value == pytest.approx(sp.pvalue, rel=0.05, abs=1e-12)
    p_ev, _ = ev.ks_stat_test.func(pd.Series(ref), pd.Series(cur), ColumnType.Numerical, 0.05)
    # evidently calls ks_2samp(method="auto"): exact for these sizes; ours is asymptotic
    assert r.p_value == pytest.approx(p_ev, rel=0.15, abs=1e-12)


def test_ks_with_ties_matches_scipy() -> None:
    rng = np.random.default_rng(3)
    ref, cur = rng.integers(0, 5, 2000).astype(float), rng.integers(0, 6, 1000).astype(float)
    assert get_test("ks")(ref, cur).statistic == pytest.approx(stats.ks_2samp(ref, cur).statistic)


@pytest.mark.parametrize("shift", SHIFTS)
def test_wasserstein_matches_scipy_and_evidently(shift: float) -> None:
    ref, cur = numeric_pair(4, shift)
    r = get_test("wasserstein")(ref, cur)
    assert r.statistic == pytest.approx(stats.wasserstein_distance(ref, cur) / ref.std(), rel=1e-9)
    w_ev, _ = ev.wasserstein_stat_test.func(pd.Series(ref), pd.Series(cur), ColumnType.Numerical, 0.1)
    assert r.statistic == pytest.approx(w_ev, rel=1e-9)


@pytest.mark.parametrize("shift", SHIFTS)
def test_psi_formula_matches_evidently_on_evidently_bins(shift: float) -> None:
    ref, cur = numeric_pair(5, shift)
    edges = np.histogram_bin_edges(np.r_[ref, cur], bins="sturges")
    p = np.histogram(ref, edges)[0] / ref.size
    q = np.histogram(cur, edges)[0] / cur.size
    psi_ev, _ = ev.psi_stat_test.func(pd.Series(ref), pd.Series(cur), ColumnType.Numerical, 0.1)
    assert psi_from_shares(p, q) == pytest.approx(psi_ev, rel=0.02)


def test_psi_on_reference_quantile_bins() -> None:
    ref, cur = numeric_pair(6, 0.25)
    r = get_test("psi")(ref, cur)
    edges = np.quantile(ref, np.linspace(0, 1, 11)[1:-1])
    p = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=10) / ref.size
    q = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=10) / cur.size
    assert r.statistic == pytest.approx(float(np.sum((q - p) * np.log(q / p))), rel=1e-9)
    assert p.min() == pytest.approx(0.1)


@pytest.mark.parametrize("unseen", [False, True])
def test_chi2_matches_scipy_and_evidently(unseen: bool) -> None:
    ref, cur = categorical_pair(7, unseen)
    r = get_test("chi2")(ref, cur)
    table = pd.crosstab(np.r_[np.zeros(ref.size), np.ones(cur.size)], np.r_[ref, cur]).to_numpy()
    sp = stats.chi2_contingency(table, correction=False)
    assert r.statistic == pytest.approx(sp.statistic, rel=1e-9)
    assert r.p_value == pytest.approx(sp.pvalue, rel=1e-6, abs=1e-300)
    gof = get_test("chi2", method="goodness_of_fit")(ref, cur)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        p_ev, _ = ev.chi_stat_test.func(pd.Series(ref), pd.Series(cur), ColumnType.Categorical, 0.05)
    assert gof.p_value == pytest.approx(p_ev, rel=1e-6, abs=1e-300)
    if unseen:
        assert r.p_value < 1e-6 and r.category == "e" and r.direction == "increase"


@pytest.mark.parametrize("unseen", [False, True])
def test_jensen_shannon_matches_scipy_and_evidently(unseen: bool) -> None:
    ref, cur = categorical_pair(8, unseen)
    r = get_test("jensen_shannon")(ref, cur)
    cats = sorted(set(ref) | set(cur))
    p = np.array([(ref == c).mean() for c in cats])
    q = np.array([(cur == c).mean() for c in cats])
    assert r.statistic == pytest.approx(spatial.distance.jensenshannon(p, q), rel=1e-9)
    js_ev, _ = ev.jensenshannon_stat_test.func(pd.Series(ref), pd.Series(cur), ColumnType.Categorical, 0.1)
    assert r.statistic == pytest.approx(js_ev, rel=1e-9)


@pytest.mark.parametrize("unseen", [False, True])
def test_categorical_psi_matches_evidently(unseen: bool) -> None:
    ref, cur = categorical_pair(9, unseen)
    r = get_test("psi_categorical")(ref, cur)
    psi_ev, _ = ev.psi_stat_test.func(pd.Series(ref), pd.Series(cur), ColumnType.Categorical, 0.1)
    assert r.statistic == pytest.approx(psi_ev, rel=1e-9)


def test_effects_and_directions() -> None:
    rng = np.random.default_rng(10)
    ref, cur = rng.normal(5, 2, 2000), rng.normal(4, 2, 1000)
    for name in ("ks", "psi", "wasserstein"):
        r = get_test(name)(ref, cur)
        assert r.direction == "decrease" and r.effect == pytest.approx(-0.5, abs=0.1)
    r = get_test("chi2")(*categorical_pair(11))
    assert r.category == "d" and r.direction == "increase" and r.effect == pytest.approx(0.05, abs=0.03)


def test_missing_values_are_dropped() -> None:
    ref, cur = numeric_pair(12, 0.3)
    dirty = cur.copy()
    dirty[::5] = np.nan
    assert get_test("ks")(ref, dirty).statistic == get_test("ks")(ref, cur[np.isfinite(dirty)]).statistic
    cref, ccur = categorical_pair(13)
    ccur_dirty = ccur.copy()
    ccur_dirty[::4] = None
    kept = ccur[np.array([v is not None for v in ccur_dirty])]
    chi2 = get_test("chi2")
    assert chi2(cref, ccur_dirty).statistic == pytest.approx(chi2(cref, kept).statistic)
