"""Calibration: p-values hold their level under no drift; the budget maps to a per-model level."""

from __future__ import annotations

import numpy as np
import pytest

from detectors import FeatureSetDrift, get_test
from detectors.calibration import alpha_from_budget, arl_from_budget, holm

ALPHA = 0.01


def null_rate(name: str, reps: int = 1500) -> float:
    rng = np.random.default_rng(42)
    test = get_test(name)
    if test.kind == "numeric":
        ref = rng.gamma(2.0, 1.0, 2000)
        windows = [rng.gamma(2.0, 1.0, 1000) for _ in range(reps)]
    else:
        cats, p = list("abcdef"), [0.3, 0.25, 0.2, 0.15, 0.07, 0.03]
        ref = rng.choice(cats, 2000, p=p).astype(object)
        windows = [rng.choice(cats, 1000, p=p).astype(object) for _ in range(reps)]
    prepared = test.prepare(ref, 1000)
    return float(np.mean([prepared(w).p_value <= ALPHA for w in windows]))


@pytest.mark.parametrize("name", ["ks", "psi", "chi2", "jensen_shannon", "psi_categorical"])
def test_analytic_p_values_hold_their_level(name: str) -> None:
    """One reference, 1,500 null windows: the rejection rate at alpha = 1% stays near 1%
    (conditional on one reference, so the tolerance is wide; never more than 2.5x)."""
    rate = null_rate(name)
    assert rate <= 2.5 * ALPHA, rate


def test_budget_to_levels() -> None:
    assert alpha_from_budget(0.5, 1000) == pytest.approx(0.005)
    assert alpha_from_budget(0.5, 5000) == pytest.approx(0.025)
    assert alpha_from_budget(1e4, 1000) == 0.5
    assert arl_from_budget(2.0) == 50_000
    with pytest.raises(ValueError, match="false_alarms_per_100k"):
        alpha_from_budget(0, 1000)


def test_holm_controls_family_wise_error() -> None:
    rng = np.random.default_rng(0)
    p = rng.uniform(size=(20_000, 20))
    any_rejected = np.mean([holm(row, 0.05)[0].any() for row in p])
    assert any_rejected == pytest.approx(1 - (1 - 0.05 / 20) ** 20, abs=0.01)
    rejected, levels = holm(np.array([0.04, 0.001, 0.015, 0.5]), 0.05)
    assert rejected.tolist() == [False, True, True, False]
    assert levels.tolist() == pytest.approx([0.025, 0.0125, 1 / 60, 0.05])


def test_feature_set_false_alarms_per_model_within_budget() -> None:
    """20 features, no drift, a generous budget (5 per 100k -> 5% of windows of 1,000): the share of
    windows with any feature flagged stays at or below the per-model level."""
    rng = np.random.default_rng(1)
    kinds = {f"n{i}": "numeric" for i in range(16)} | {f"c{i}": "categorical" for i in range(4)}
    alarms = windows = 0
    for _ in range(4):
        n = 52_000
        cols = {f"n{i}": rng.standard_t(5, n) if i % 2 else rng.normal(size=n) for i in range(16)}
        cols |= {f"c{i}": rng.choice(list("abcd"), n).astype(object) for i in range(4)}
        det = FeatureSetDrift(kinds, false_alarms_per_100k=5)
        found = det.update(cols)
        alarms += len({d.window_end for d in found})
        windows += det.windows_tested
    assert windows == 200
    assert alarms / windows <= 0.05 * 1.6


def test_power_at_quarter_sigma_with_windows_of_1000() -> None:
    """The issue's target: power >= 0.9 at a 0.25 sigma shift, windows of 1,000, at the per-feature level
    a 20-feature model gets from the 0.5-per-100k budget (0.005 / 20)."""
    rng = np.random.default_rng(2)
    ks = get_test("ks")
    level = alpha_from_budget(0.5, 1000) / 20
    hits = [ks(rng.normal(0, 1, 2000), rng.normal(0.25, 1, 1000)).p_value <= level for _ in range(300)]
    assert np.mean(hits) >= 0.9


@pytest.mark.parametrize("name", ["chi2", "jensen_shannon", "psi_categorical"])
def test_many_rare_categories_do_not_flood_alarms(name: str) -> None:
    """300 Zipf-distributed categories: without merging rare ones JS rejected 60% of null windows at
    p < 0.01; now the rate stays within 2.5x of nominal."""
    rng = np.random.default_rng(5)
    p = 1 / np.arange(1, 301) ** 1.1
    p /= p.sum()
    cats = np.array([f"c{i}" for i in range(300)], dtype=object)
    prepared = get_test(name).prepare(rng.choice(cats, 2000, p=p))
    rate = np.mean([prepared(rng.choice(cats, 1000, p=p)).p_value <= ALPHA for _ in range(400)])
    assert rate <= 2.5 * ALPHA
