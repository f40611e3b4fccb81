"""Label-free expected accuracy and its comparison to realised accuracy; rolling metrics."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from detectors.metrics import RollingBinaryMetrics, is_positive, labels_equal, roc_auc
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


# -- rolling metrics -------------------------------------------------------------------------------
def test_roc_auc_matches_sklearn_with_ties() -> None:
    rng = np.random.default_rng(3)
    s = np.round(rng.random(2000), 1)  # many ties
    y = rng.random(2000) < s
    assert roc_auc(s, y) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert math.isnan(roc_auc(s[:10], np.ones(10, dtype=bool)))  # one class only


def test_rolling_metrics_match_sklearn_over_the_window() -> None:
    rng = np.random.default_rng(4)
    y = rng.integers(0, 2, 2000)
    pred = np.where(rng.random(2000) < 0.8, y, 1 - y)
    s = np.round(rng.random(2000), 2)
    perf = RollingBinaryMetrics(window=300)
    for a in range(0, 2000, 170):
        perf.update(y[a : a + 170], pred[a : a + 170], s[a : a + 170])
    assert perf.n == 300 and perf.total == 2000
    assert perf.get() == pytest.approx(
        {"accuracy": np.mean(pred[-300:] == y[-300:]), "roc_auc": roc_auc_score(y[-300:], s[-300:])}
    )


def test_revert_is_the_window_without_its_oldest_events() -> None:
    rng = np.random.default_rng(5)
    y, pred, s = rng.integers(0, 2, 500), rng.integers(0, 2, 500), rng.random(500)
    perf = RollingBinaryMetrics(window=200)
    perf.update(y, pred, s, index=np.arange(500))
    perf.revert(50)
    fresh = RollingBinaryMetrics(window=200)
    fresh.update(y[-150:], pred[-150:], s[-150:], index=np.arange(350, 500))
    assert perf.get() == pytest.approx(fresh.get()) and perf.n == 150
    assert perf.span()[:2] == (350, 499)
    perf.update(y[:80], pred[:80], s[:80])  # refills the freed slots exactly
    fresh.update(y[:80], pred[:80], s[:80])
    assert perf.get() == pytest.approx(fresh.get()) and perf.n == 200
    perf.revert(10_000)
    assert perf.n == 0 and math.isnan(perf.accuracy())


def test_labels_are_compared_and_read_as_given() -> None:
    assert labels_equal(["1", 1.0, "a", 2], [1, True, "a", "2.0"]).tolist() == [True, True, True, False]
    many = np.arange(100).astype(object)  # more distinct values than the by-value path takes
    assert is_positive(many).tolist() == [v == 1 for v in range(100)]
    assert is_positive(np.array(["Yes ", "POS", "0", "nope"], dtype=object)).tolist() == [
        True,
        True,
        False,
        False,
    ]
    with pytest.raises(ValueError, match="equal lengths"):
        labels_equal([1, 0], [1])


def test_rolling_metrics_pickle_and_validation() -> None:
    perf = RollingBinaryMetrics(window=5)
    perf.update([1, 0, 1], [1, 1, 1], [0.9, 0.4, 0.8])
    copy = pickle.loads(pickle.dumps(perf))
    assert copy.get() == perf.get() and copy.n == 3
    with pytest.raises(ValueError, match="window"):
        RollingBinaryMetrics(window=0)
