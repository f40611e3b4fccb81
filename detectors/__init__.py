"""Driftline detectors: pure, calibrated drift detection (no I/O).

- window tests by name: :func:`get_test` (``ks``, ``wasserstein``, ``psi``; ``chi2``,
  ``jensen_shannon``, ``psi_categorical``) -> ``test(reference, current) -> TestResult``
- sequential detectors by name: :func:`get_detector` -> ``StreamDetector.update(x) -> DriftSignal | None``
- :class:`FeatureSetDrift`: all features of one model version, tumbling windows, one false-alarm budget
"""

from __future__ import annotations

from .base import DriftSignal, StreamDetector, TestResult, WindowTest
from .exceptions import DetectorError, UnknownNameError
from .feature_set import FeatureDrift, FeatureSetDrift
from .registry import available_detectors, available_tests, get_detector, get_test

__all__ = [
    "DetectorError",
    "DriftSignal",
    "FeatureDrift",
    "FeatureSetDrift",
    "StreamDetector",
    "TestResult",
    "UnknownNameError",
    "WindowTest",
    "available_detectors",
    "available_tests",
    "get_detector",
    "get_test",
]
