"""Detectors and window tests by name, so processors pick them from configuration, and the parameters
Driftline recommends for them (the one home of those defaults: processors read them from here)."""

from __future__ import annotations

import inspect
from typing import Any

from .adwin import ADWIN
from .base import StreamDetector
from .bernoulli_cusum import BernoulliCUSUM
from .chi2 import Chi2Test
from .ddm import DDM
from .exceptions import DetectorError, UnknownNameError
from .gaussian_cusum import GaussianCUSUM
from .hddm_a import HDDM_A
from .jensen_shannon import JensenShannonTest
from .ks import KSTest
from .page_hinkley import PageHinkley
from .psi import PSITest
from .psi_categorical import CategoricalPSITest
from .residual_cusum import ResidualCUSUM
from .wasserstein import WassersteinTest

__all__ = [
    "RECOMMENDED_ERROR_DETECTOR",
    "available_detectors",
    "available_tests",
    "get_detector",
    "get_test",
    "recommended_params",
]

_TESTS: dict[str, Any] = {  # name -> window-test class (with ``name`` and ``kind``)
    "ks": KSTest,
    "wasserstein": WassersteinTest,
    "psi": PSITest,
    "chi2": Chi2Test,
    "jensen_shannon": JensenShannonTest,
    "psi_categorical": CategoricalPSITest,
}

_DETECTORS: dict[str, type[StreamDetector]] = {
    "adwin": ADWIN,
    "page_hinkley": PageHinkley,
    "hddm_a": HDDM_A,
    "ddm": DDM,
    "bernoulli_cusum": BernoulliCUSUM,
    "gaussian_cusum": GaussianCUSUM,
    "residual_cusum": ResidualCUSUM,
}


# A model's error stream (0/1 per labelled prediction): ADWIN at delta 1e-4, what the stream processor runs.
# ADWIN compares the recent stretch of the stream with the older one and estimates no baseline first. At
# 1e-4 it raised no false alarm in 20M stationary error events (benchmarks/detection.py) and no early alarm
# in the demo (seeds 1-9), and found a 0.09 -> 0.6 error jump in the same ~60 events as river's default
# 0.002 (which alarmed on a 0.090 -> 0.092 drift in the demo). bernoulli_cusum is faster on synthetic error
# streams with a stationary baseline (benchmarks/detection.py), but in the demo it raised a false alarm
# before any drift on seed 1 at 0.5 false alarms per 100k, and at 0.1 an alarm between the covariate shift
# and the concept change on seed 7 (its retrain was rejected).
RECOMMENDED_ERROR_DETECTOR = "adwin"

# parameters that differ from a detector's defaults; a detector not listed is recommended as it comes
_RECOMMENDED_PARAMS: dict[str, dict[str, Any]] = {"adwin": {"delta": 1e-4}}


def _build(what: str, name: str, cls: type, params: dict[str, Any]) -> Any:
    valid = [p for p in inspect.signature(cls).parameters if p != "self"]
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise DetectorError(f"{what} {name!r} has no parameter(s) {unknown}; valid parameters: {valid}")
    return cls(**params)


def available_tests(kind: str | None = None) -> list[str]:
    """Names of the window tests, optionally only ``kind`` ("numeric" or "categorical").

    >>> available_tests("categorical")
    ['chi2', 'jensen_shannon', 'psi_categorical']
    """
    return sorted(n for n, c in _TESTS.items() if kind is None or c.kind == kind)


def available_detectors() -> list[str]:
    """Names of the sequential stream detectors."""
    return sorted(_DETECTORS)


def get_test(name: str, **params: Any) -> Any:
    """A window test by name: ``get_test("ks")(reference, current) -> TestResult``.

    >>> get_test("nope")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    detectors.exceptions.UnknownNameError: unknown test 'nope'; valid names: chi2, jensen_shannon, ks, ...
    """
    try:
        cls = _TESTS[name]
    except KeyError:
        raise UnknownNameError("test", name, _TESTS) from None
    return _build("test", name, cls, params)


def get_detector(name: str, **params: Any) -> StreamDetector:
    """A fresh sequential detector by name, e.g. ``get_detector("adwin", delta=0.001)``."""
    try:
        cls = _DETECTORS[name]
    except KeyError:
        raise UnknownNameError("detector", name, _DETECTORS) from None
    return _build("detector", name, cls, params)


def recommended_params(name: str) -> dict[str, Any]:
    """The parameters Driftline recommends for the sequential detector ``name`` (a fresh dict; empty when
    its defaults are the recommendation): ``get_detector(name, **recommended_params(name))``.

    >>> recommended_params(RECOMMENDED_ERROR_DETECTOR)
    {'delta': 0.0001}
    >>> recommended_params("gaussian_cusum")
    {}
    """
    if name not in _DETECTORS:
        raise UnknownNameError("detector", name, _DETECTORS)
    return dict(_RECOMMENDED_PARAMS.get(name, {}))
