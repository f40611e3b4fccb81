"""Label-free expected accuracy and its comparison to realised accuracy."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest

from detectors.performance import ExpectedAccuracy


def calibrated_binary(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    p = rng.beta(0.7, 0.7, n)
    return p, (rng.random(n) < p).astype(int)


def test_estimate_tracks_realised_accuracy_without_labels() -> None:
    rng = np.random.default_rng(0)
    p, y = calibrated_binary(rng, 40_000)
    est = ExpectedAccuracy(window_size=10_000).fit(p[:20_000], y[:20_000])
    est.update(p[20_000:])
    realised = float(((p[-10_000:] >= 0.5) == y[-10_000:]).mean())
    assert est.get() == pytest.approx(realised, abs=0.01)


def test_fit_corrects_overconfident_models() -> None:
    rng = np.random.default_rng(1)
    p, y = calibrated_binary(rng, 30_000)
    overconfident = np.clip(0.5 + (p - 0.5) * 1.8, 0, 1)
    raw = ExpectedAccuracy(window_size=10_000)
    raw.update(overconfident[-10_000:])
    fitted = ExpectedAccuracy(window_size=10_000).fit(overconfident[:20_000], y[:20_000])
    fitted.update(overconfident[-10_000:])
    realised = float(((p[-10_000:] >= 0.5) == y[-10_000:]).mean())
    assert abs(fitted.get() - realised) < 0.01 < abs(raw.get() - realised)


def test_check_flags_concept_drift_as_inconsistent() -> None:
    rng = np.random.default_rng(2)
    p, y = calibrated_binary(rng, 20_000)
    est = ExpectedAccuracy().fit(p[:10_000], y[:10_000])
    ok = est.check(p[10_000:], y[10_000:])
    assert ok.consistent and abs(ok.z) < 3 and ok.rows == 10_000
    flipped = y[10_000:].copy()
    flipped[:3000] = 1 - flipped[:3000]  # the labels changed, the inputs did not
    bad = est.check(p[10_000:], flipped)
    assert not bad.consistent and bad.realised < bad.estimated and bad.z < -3


def test_multiclass_window_revert_and_pickle() -> None:
    rng = np.random.default_rng(3)
    proba = rng.dirichlet([1, 1, 1], 500)
    est = ExpectedAccuracy(window_size=100)
    assert math.isnan(est.get())
    est.update(proba)
    assert est.get() == pytest.approx(proba.max(axis=1)[-100:].mean())
    copy = pickle.loads(pickle.dumps(est))
    est.revert(50)
    assert est.get() == pytest.approx(proba.max(axis=1)[-50:].mean())
    assert copy.get() == pytest.approx(proba.max(axis=1)[-100:].mean())
    with pytest.raises(ValueError, match="window_size"):
        ExpectedAccuracy(window_size=0)
