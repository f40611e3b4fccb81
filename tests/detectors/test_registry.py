"""The registry: names, unknown names, kinds."""

from __future__ import annotations

import numpy as np
import pytest

from detectors import (
    DetectorError,
    StreamDetector,
    UnknownNameError,
    available_detectors,
    available_tests,
    get_detector,
    get_test,
)
from detectors.calibration import DEFAULT_FALSE_ALARMS_PER_100K
from detectors.registry import RECOMMENDED_ERROR_DETECTOR, recommended_params
from driftline.errors import DriftlineError


def test_names() -> None:
    assert set(available_tests("numeric")) == {"ks", "wasserstein", "psi"}
    assert set(available_tests("categorical")) == {"chi2", "jensen_shannon", "psi_categorical"}
    assert {"adwin", "page_hinkley", "hddm_a", "ddm"} <= set(available_detectors())


@pytest.mark.parametrize("lookup, what", [(get_test, "test"), (get_detector, "detector")])
def test_unknown_names_list_the_valid_ones(lookup, what) -> None:
    with pytest.raises(UnknownNameError) as info:
        lookup("nope")
    err = info.value
    assert isinstance(err, KeyError) and isinstance(err, ValueError)
    assert isinstance(err, DetectorError) and isinstance(err, DriftlineError)
    assert f"unknown {what} 'nope'" in str(err)
    valid = available_tests() if what == "test" else available_detectors()
    assert all(name in str(err) for name in valid)


@pytest.mark.parametrize("name", available_tests())
def test_every_test_finds_a_big_shift(name: str) -> None:
    rng = np.random.default_rng(0)
    t = get_test(name)
    if t.kind == "numeric":
        ref, cur = rng.normal(0, 1, 2000), rng.normal(-1, 1, 1000)
    else:
        ref = rng.choice(["a", "b"], 2000).astype(object)
        cur = rng.choice(["a", "b"], 1000, p=[0.8, 0.2]).astype(object)
    r = t(ref, cur)
    assert r.test == name and r.p_value is not None and r.p_value < 1e-6
    assert r.direction == "decrease" if t.kind == "numeric" else r.category in ("a", "b")


@pytest.mark.parametrize("name", available_detectors())
def test_detectors_are_stream_detectors(name: str) -> None:
    det = get_detector(name)
    assert isinstance(det, StreamDetector) and det.name == name
    with pytest.raises(ValueError):
        get_detector(name, nonsense=1)


@pytest.mark.parametrize("name", available_detectors())
def test_recommended_params_build_the_detector(name: str) -> None:
    params = recommended_params(name)
    assert get_detector(name, **params).name == name
    params["nonsense"] = 1  # a fresh dict: callers may change it
    assert "nonsense" not in recommended_params(name)


def test_the_recommended_error_detector_is_what_the_processor_runs() -> None:
    assert RECOMMENDED_ERROR_DETECTOR == "adwin"
    assert recommended_params(RECOMMENDED_ERROR_DETECTOR) == {"delta": 1e-4}
    with pytest.raises(UnknownNameError, match="valid names: adwin"):
        recommended_params("nope")


@pytest.mark.parametrize("name", ["bernoulli_cusum", "gaussian_cusum"])
def test_budgeted_detectors_default_to_the_one_default_budget(name: str) -> None:
    assert DEFAULT_FALSE_ALARMS_PER_100K == 0.1
    assert get_detector(name).false_alarms_per_100k == DEFAULT_FALSE_ALARMS_PER_100K
