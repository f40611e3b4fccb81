"""Detectors and window tests by name, so processors pick them from configuration."""

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
from .wasserstein import WassersteinTest

__all__ = ["available_detectors", "available_tests", "get_detector", "get_test", "register_detector"]

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
}


def _build(what: str, name: str, cls: type, params: dict[str, Any]) -> Any:
    valid = [p for p in inspect.signature(cls).parameters if p != "self"]
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise DetectorError(f"{what} {name!r} has no parameter(s) {unknown}; valid parameters: {valid}")
    return cls(**params)


def register_detector(name: str, cls: type[StreamDetector]) -> None:
    """Add a sequential detector class under ``name`` (used by the modules defining detectors)."""
    _DETECTORS[name] = cls


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
