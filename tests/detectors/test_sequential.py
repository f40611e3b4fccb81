"""Sequential detectors: polarity, budget, and the FHDDM remark."""

from __future__ import annotations

import numpy as np
import pytest

from detectors import get_detector


def bernoulli(seed: int, before: float, after: float, n: int = 3000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.r_[rng.random(n) < before, rng.random(n) < after].astype(float)


@pytest.mark.parametrize("name", ["adwin", "page_hinkley", "hddm_a", "ddm", "bernoulli_cusum"])
def test_error_streams_alarm_on_increases_only(name: str) -> None:
    better = get_detector(name).update_many(bernoulli(0, 0.3, 0.1))
    worse = get_detector(name).update_many(bernoulli(0, 0.1, 0.3))
    assert not [s for s in better if s.index > 3000]
    assert [s for s in worse if s.index > 3000 and s.direction == "increase"]


@pytest.mark.parametrize("name", ["adwin", "page_hinkley", "hddm_a", "bernoulli_cusum", "gaussian_cusum"])
def test_polarity_decrease_and_both(name: str) -> None:
    xs = bernoulli(1, 0.4, 0.1)
    for polarity in ("decrease", "both"):
        found = get_detector(name, polarity=polarity).update_many(xs)
        assert any(s.index > 3000 and s.direction == "decrease" for s in found), polarity
    assert not [s for s in get_detector(name, polarity="increase").update_many(xs) if s.index > 3000]


def test_river_fhddm_alarms_on_a_drop_of_its_input() -> None:
    """river's FHDDM docstring feeds it errors, but it tracks the *maximum* rate of 1s and alarms when
    that rate drops: fed an error stream it misses an error increase and fires on an improvement.
    (Driftline does not wrap it; the benchmark feeds it 1 - error.)"""
    from river.drift.binary import FHDDM

    def alarms(xs: np.ndarray) -> list[int]:
        d, out = FHDDM(), []
        for i, x in enumerate(xs.tolist()):
            d.update(x)
            if d.drift_detected:
                out.append(i)
        return out

    assert not [i for i in alarms(bernoulli(2, 0.1, 0.4)) if i >= 3000]
    assert [i for i in alarms(bernoulli(2, 0.4, 0.1)) if i >= 3000]
    assert [i for i in alarms(1 - bernoulli(2, 0.1, 0.4)) if i >= 3000]


@pytest.mark.parametrize(
    "name, make",
    [
        ("bernoulli_cusum", lambda rng, n: (rng.random(n) < 0.1).astype(float)),
        ("gaussian_cusum", lambda rng, n: rng.normal(3, 2, n)),
    ],
)
def test_cusum_false_alarms_within_a_budget(name, make) -> None:
    """At a budget of 100 per 100k (ARL0 = 1,000 events) the realised rate stays at or below it."""
    rng = np.random.default_rng(3)
    n = 400_000
    found = get_detector(name, false_alarms_per_100k=100).update_many(make(rng, n))
    assert len(found) / n * 1e5 <= 100


def test_cusum_delays() -> None:
    delays = []
    for seed in range(10):
        found = get_detector("bernoulli_cusum").update_many(bernoulli(seed, 0.1, 0.3))
        delays.append(next(s.index for s in found if s.index > 3000) - 3000)
    assert np.mean(delays) < 150
    rng = np.random.default_rng(4)
    x = np.r_[rng.normal(0, 1, 5000), rng.normal(0.5, 1, 2000)]
    [s] = get_detector("gaussian_cusum").update_many(x)
    assert 5000 < s.index < 5300 and s.direction == "increase" and s.value > s.threshold


@pytest.mark.parametrize(
    "name, kwargs, word",
    [
        ("adwin", {"delta": 2.0}, "delta"),
        ("adwin", {"polarity": "up"}, "polarity"),
        ("bernoulli_cusum", {"odds_ratio": 0.5}, "odds_ratio"),
        ("bernoulli_cusum", {"fast_odds_ratio": 1.5}, "fast_odds_ratio"),
        ("gaussian_cusum", {"shift": 0.0}, "shift"),
        ("gaussian_cusum", {"false_alarms_per_100k": 0.0}, "false_alarms_per_100k"),
        ("hddm_a", {"drift_confidence": 0.0}, "drift_confidence"),
    ],
)
def test_validation_names_the_parameter(name: str, kwargs: dict, word: str) -> None:
    with pytest.raises(ValueError, match=word):
        get_detector(name, **kwargs)


def regimes(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """70k-event error and numeric streams with four regimes (changes at 20k, 30k and 50k events)."""
    rng = np.random.default_rng(seed)
    errors = np.r_[
        rng.random(20000) < 0.1, rng.random(10000) < 0.3, rng.random(20000) < 0.05, rng.random(20000) < 0.5
    ].astype(float)
    numeric = np.r_[
        rng.normal(10, 2, 20000),
        rng.normal(10.6, 2, 10000),
        rng.normal(9, 3, 20000),
        rng.normal(9.2, 3, 20000),
    ]
    return errors, numeric


@pytest.mark.parametrize(
    "name, params, seed, expected",
    [  # alarms (index, direction, value, threshold) of the CUSUMs before they shared one base
        (
            "bernoulli_cusum",
            {},
            0,
            [(20111, "increase", 9.704149, 9.467842), (50043, "increase", 13.481841, 12.7679)],
        ),
        (
            "bernoulli_cusum",
            {"polarity": "both"},
            0,
            [
                (20117, "increase", 10.5091, 10.193483),
                (30040, "decrease", 13.338697, 13.033934),
                (50027, "increase", 13.453959, 12.981982),
            ],
        ),
        (
            "gaussian_cusum",
            {},
            0,
            [(20371, "increase", 10.510875, 10.301739), (30030, "decrease", 12.851207, 12.401706)],
        ),
        (
            "gaussian_cusum",
            {},
            1,
            [
                (20410, "increase", 10.382275, 10.301739),
                (30039, "decrease", 14.423581, 12.401706),
                (56135, "increase", 12.539216, 12.350582),
            ],
        ),
        (
            "gaussian_cusum",
            {"fast_shift": None},
            0,
            [(20310, "increase", 9.715555, 9.585075), (30047, "decrease", 10.084101, 9.784519)],
        ),
    ],
)
def test_cusum_alarms_are_pinned(name: str, params: dict, seed: int, expected: list) -> None:
    errors, numeric = regimes(seed)
    det = get_detector(name, false_alarms_per_100k=0.5, **params)
    found = det.update_many(errors if name == "bernoulli_cusum" else numeric)
    assert [(s.index, s.direction) for s in found] == [e[:2] for e in expected]
    assert [(s.value, s.threshold) for s in found] == [pytest.approx(e[2:], abs=1e-6) for e in expected]


@pytest.mark.parametrize("kind", ["errors", "values"])
def test_adwin_reports_rivers_window_means_through_a_checkpoint(kind: str) -> None:
    """Driftline's ADWIN keeps the window's sum itself instead of reading river's before every update:
    the same alarms, with river's window means before and after each cut, bit for bit -- also across
    a pickle, and from a checkpoint pickled before the sum was kept."""
    import pickle

    from river import drift

    rng = np.random.default_rng(3)
    means = rng.random(12)
    parts = [rng.random(3000) < m if kind == "errors" else rng.normal(3 * m, 1 + m, 3000) for m in means]
    xs = np.concatenate(parts).astype(float).tolist()
    reference, river_adwin = [], drift.ADWIN()
    for i, x in enumerate(xs, 1):
        before = river_adwin.estimation
        river_adwin.update(x)
        if river_adwin.drift_detected:
            reference.append((i, river_adwin.estimation, before))
    assert len(reference) >= 5

    det = get_detector("adwin", polarity="both")
    got = det.update_many(xs[:5000])
    restored = pickle.loads(pickle.dumps(det))
    got += restored.update_many(xs[5000:9000])
    old = pickle.loads(pickle.dumps(restored))
    del old.__dict__["_total"], old.__dict__["_width"]  # as a checkpoint from before
    old = pickle.loads(pickle.dumps(old))
    got += [s for x in xs[9000:] if (s := old.update(x)) is not None]
    assert [(s.index, s.value, s.threshold) for s in got] == reference
