"""FeatureSetDrift: the windowed multi-feature API the stream processor builds on."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from detectors import DetectorError, FeatureDrift, FeatureSetDrift

KINDS = {"x": "numeric", "y": "numeric", "c": "categorical"}


def make_rows(rng: np.random.Generator, n: int, shift: float = 0.0, share: float = 0.3) -> dict:
    return {
        "x": rng.normal(shift, 1, n),
        "y": rng.exponential(1, n),
        "c": rng.choice(["a", "b"], n, p=[1 - share, share]).astype(object),
    }


def test_windows_are_tumbling_and_indexed_in_the_update_stream() -> None:
    """A drifted feature is reported every window with 0-based [start, end) row indices."""
    rng = np.random.default_rng(1)
    det = FeatureSetDrift(KINDS, reference_size=2000, window_size=1000)
    assert det.update(make_rows(rng, 2500)) == []
    found = det.update(make_rows(rng, 2600, shift=1.0))
    got = [(d.feature, d.window_start, d.window_end) for d in found]
    assert got == [("x", 2000, 3000), ("x", 3000, 4000), ("x", 4000, 5000)]
    d = found[1]
    assert isinstance(d, FeatureDrift)
    assert d.direction == "increase" and d.effect > 0.5 and d.psi > 0.1
    assert d.p_value is not None and d.p_value <= d.threshold
    assert d.reference_rows == 2000 and d.test == "ks"
    assert det.rows_seen == 5100


def test_batch_boundaries_do_not_matter() -> None:
    rng = np.random.default_rng(2)
    before, after = make_rows(rng, 3000), make_rows(rng, 3000, shift=0.4, share=0.4)
    rows = {k: np.concatenate([before[k], after[k]]) for k in before}
    one = FeatureSetDrift(KINDS).update(rows)
    many = FeatureSetDrift(KINDS)
    got: list[FeatureDrift] = []
    for s in range(0, 6000, 137):
        got.extend(many.update({k: v[s : s + 137] for k, v in rows.items()}))
    assert got == one and len(one) >= 4
    assert {d.feature for d in one} == {"x", "c"}
    cat = next(d for d in one if d.feature == "c")
    assert cat.category in ("a", "b") and cat.test == "chi2"


def test_missing_values_are_left_out() -> None:
    rng = np.random.default_rng(3)
    det = FeatureSetDrift(KINDS, reference_size=1000, window_size=500)
    rows = make_rows(rng, 1500)
    rows["x"][::3] = np.nan
    rows["c"][::4] = None
    assert det.update(rows) == []
    rows = make_rows(rng, 500, shift=1.0)
    rows["x"][:100] = np.nan
    [d] = det.update(rows)
    assert d.feature == "x" and d.rows == 400


def test_categorical_unseen_category_is_flagged() -> None:
    rng = np.random.default_rng(4)
    det = FeatureSetDrift({"c": "categorical"}, categorical_test="psi_categorical")
    det.update({"c": rng.choice(["a", "b"], 2000).astype(object)})
    [d] = det.update({"c": rng.choice(["a", "b", "new"], 1000, p=[0.45, 0.45, 0.1]).astype(object)})
    assert d.category == "new" and d.direction == "increase"


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"reference_size": 5}, "reference_size"),
        ({"window_size": 0}, "window_size"),
        ({"false_alarms_per_100k": 0}, "false_alarms_per_100k"),
        ({"numeric_test": "chi2"}, "numeric_test"),
        ({"categorical_test": "nope"}, "nope"),
        ({"min_effect": -1}, "min_effect"),
    ],
)
def test_bad_parameters_name_the_parameter(kwargs: dict, word: str) -> None:
    with pytest.raises(ValueError, match=word):
        FeatureSetDrift(KINDS, **kwargs)


def test_bad_columns() -> None:
    det = FeatureSetDrift(KINDS)
    with pytest.raises(DetectorError, match="missing columns"):
        det.update({"x": np.zeros(3)})
    with pytest.raises(DetectorError, match="equal lengths"):
        det.update({"x": np.zeros(3), "y": np.zeros(2), "c": np.array(["a"] * 3, dtype=object)})
    with pytest.raises(DetectorError, match="declared numeric"):
        det.update({"x": ["a", "b"], "y": [1.0, 2.0], "c": ["a", "b"]})


def test_pickle_round_trip_mid_window_resumes_exactly() -> None:
    rng = np.random.default_rng(5)
    det = FeatureSetDrift(KINDS, numeric_test="wasserstein")
    det.update(make_rows(rng, 2300))
    twin = pickle.loads(pickle.dumps(det))
    more = make_rows(rng, 3000, shift=0.5)
    assert det.update(more) == twin.update(more) != []


def test_min_effect_filters_small_shifts() -> None:
    rng = np.random.default_rng(6)
    rows = make_rows(rng, 2000)
    shifted = make_rows(rng, 5000, shift=0.15)
    budget = {"false_alarms_per_100k": 0.5}  # a 0.15 sd shift in 5,000 rows: found at this budget
    a = FeatureSetDrift(KINDS, window_size=5000, **budget)
    b = FeatureSetDrift(KINDS, window_size=5000, min_effect=0.3, **budget)
    a.update(rows)
    b.update(rows)
    assert [d.feature for d in a.update(shifted)] == ["x"]
    assert b.update(shifted) == []


def test_feature_with_empty_reference_is_skipped_not_fatal() -> None:
    rng = np.random.default_rng(8)
    det = FeatureSetDrift(KINDS)
    rows = make_rows(rng, 2000)
    rows["y"][:] = np.nan
    rows["c"][:] = None
    det.update(rows)
    assert set(det.skipped) == {"y", "c"}
    found = det.update(make_rows(rng, 1000, shift=1.0))
    assert [d.feature for d in found] == ["x"]
