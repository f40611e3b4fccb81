"""Driftline detectors: pure, calibrated drift detection (no I/O).

- window tests by name: :func:`get_test` (``ks``, ``wasserstein``, ``psi``; ``chi2``,
  ``jensen_shannon``, ``psi_categorical``) -> ``test(reference, current) -> TestResult``
- sequential detectors by name: :func:`get_detector` -> ``StreamDetector.update(x) -> DriftSignal | None``
- :class:`FeatureSetDrift`: all features of one model version, tumbling windows, one false-alarm budget
- :class:`ExpectedAccuracy`: label-free (confidence-based) accuracy estimate, checked against labels later
- tasks by name: :func:`get_task` (``binary``) -> :class:`Task`: what "correct" means, the error stream,
  the rolling metrics (:class:`RollingBinaryMetrics`), the label-free estimate, validation and serving

Recommended configuration (see ``benchmarks/detection.py``): ``bernoulli_cusum`` for error streams,
``gaussian_cusum`` for a numeric stream, :class:`FeatureSetDrift` with ``ks`` / ``chi2`` for the features of
a model; all take ``false_alarms_per_100k`` and derive their thresholds from it.
"""

from __future__ import annotations

from .base import DriftSignal, StreamDetector, TestResult, WindowTest
from .exceptions import DetectorError, UnknownNameError
from .feature_set import FeatureDrift, FeatureSetDrift
from .metrics import RollingBinaryMetrics
from .performance import ExpectedAccuracy
from .registry import available_detectors, available_tests, get_detector, get_test
from .tasks import BinaryClassification, Task, available_tasks, get_task

__all__ = [
    "BinaryClassification",
    "DetectorError",
    "DriftSignal",
    "ExpectedAccuracy",
    "FeatureDrift",
    "FeatureSetDrift",
    "RollingBinaryMetrics",
    "StreamDetector",
    "Task",
    "TestResult",
    "UnknownNameError",
    "WindowTest",
    "available_detectors",
    "available_tasks",
    "available_tests",
    "get_detector",
    "get_task",
    "get_test",
]
