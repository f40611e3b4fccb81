"""One contract suite walking the registry: clone, pickle round-trip of state, reset, determinism,
no mutable defaults -- for every sequential detector, every window test and FeatureSetDrift."""

from __future__ import annotations

import inspect
import pickle

import numpy as np
import pytest

from detectors import FeatureSetDrift, available_detectors, available_tests, get_detector, get_test


def error_stream(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.r_[rng.random(3000) < 0.1, rng.random(3000) < 0.4].astype(float)


def signals(det, xs) -> list:
    return det.update_many(xs)


def no_mutable_defaults(cls: type) -> None:
    for p in inspect.signature(cls).parameters.values():
        assert not isinstance(p.default, list | dict | set | np.ndarray), f"{cls.__name__}.{p.name}"


@pytest.mark.parametrize("name", available_detectors())
class TestDetectorContract:
    def test_finds_the_change_with_its_polarity(self, name: str) -> None:
        found = signals(get_detector(name), error_stream())
        assert found and all(s.detector == name for s in found)
        assert any(3000 < s.index <= 4000 and s.direction == "increase" for s in found)

    def test_clone_is_fresh_with_same_parameters(self, name: str) -> None:
        det = get_detector(name)
        xs = error_stream(1)
        det.update_many(xs[:3500])
        twin = det.clone()
        assert type(twin) is type(det) and twin.n == 0
        assert signals(twin, xs) == signals(get_detector(name), xs)

    def test_pickle_round_trip_keeps_state(self, name: str) -> None:
        det = get_detector(name)
        xs = error_stream(2)
        det.update_many(xs[:3100])
        copy = pickle.loads(pickle.dumps(det))
        assert copy.n == det.n == 3100
        assert signals(copy, xs[3100:]) == signals(det, xs[3100:])

    def test_reset(self, name: str) -> None:
        det = get_detector(name)
        xs = error_stream(3)
        first = signals(det, xs)
        det.reset()
        assert det.n == 0 and signals(det, xs) == first

    def test_deterministic_and_no_mutable_defaults(self, name: str) -> None:
        xs = error_stream(4)
        assert signals(get_detector(name), xs) == signals(get_detector(name), xs)
        no_mutable_defaults(type(get_detector(name)))

    def test_bad_parameter_names_the_parameter(self, name: str) -> None:
        cls = type(get_detector(name))
        for pname, p in inspect.signature(cls).parameters.items():
            if isinstance(p.default, float | int) and not isinstance(p.default, bool):
                with pytest.raises(ValueError, match=pname):
                    cls(**{pname: -1})


@pytest.mark.parametrize("name", available_tests())
class TestWindowTestContract:
    def data(self, name: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        if get_test(name).kind == "numeric":
            return rng.normal(0, 1, 1500), rng.normal(0.3, 1, 700)
        return rng.choice(list("abc"), 1500).astype(object), rng.choice(list("abcd"), 700).astype(object)

    def test_pickle_determinism_and_defaults(self, name: str) -> None:
        t = get_test(name)
        ref, cur = self.data(name, 0)
        copy = pickle.loads(pickle.dumps(t))
        assert t(ref, cur) == copy(ref, cur) == get_test(name)(ref, cur)
        prepared = t.prepare(ref, 700)
        assert pickle.loads(pickle.dumps(prepared))(cur) == prepared(cur) == t(ref, cur)
        no_mutable_defaults(type(t))
        assert t.name == name and t.kind in ("numeric", "categorical")

    def test_p_values_are_probabilities(self, name: str) -> None:
        for seed in range(3):
            r = get_test(name)(*self.data(name, seed))
            assert r.p_value is not None and 0 <= r.p_value <= 1 and r.statistic >= 0


def test_feature_set_contract() -> None:
    no_mutable_defaults(FeatureSetDrift)
    rng = np.random.default_rng(5)
    cols = {"x": rng.normal(0, 1, 6000), "c": rng.choice(list("ab"), 6000).astype(object)}
    cols["x"][4000:] += 0.5
    kinds = {"x": "numeric", "c": "categorical"}
    det = FeatureSetDrift(kinds)
    det.update({k: v[:2500] for k, v in cols.items()})
    copy = pickle.loads(pickle.dumps(det))
    rest = {k: v[2500:] for k, v in cols.items()}
    out = det.update(rest)
    assert out and out == copy.update(rest)
    det.reset()
    assert det.rows_seen == 0 and det.update(cols) == FeatureSetDrift(kinds).update(cols)
