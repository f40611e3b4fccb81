"""Driftline detectors: pure, calibrated drift detection (no I/O).

- window tests by name: :func:`get_test` (``ks``, ``wasserstein``, ``psi``; ``chi2``,
  ``jensen_shannon``, ``psi_categorical``) -> ``test(reference, current) -> TestResult``
- sequential detectors by name: :func:`get_detector` -> ``StreamDetector.update(x) -> DriftSignal | None``
- :class:`FeatureSetDrift`: all features of one model version, tumbling windows, one false-alarm budget
- :class:`SequentialFeatureDrift`: all features of one model version (and their joint distribution),
  CUSUMs updated a batch at a time with batch-independent alarms, one false-alarm budget: what the
  stream processor runs on a version's predictions
- :class:`ExpectedAccuracy`: label-free (confidence-based) accuracy estimate, checked against labels later
- tasks by name: :func:`get_task` (``binary``) -> :class:`Task`: what "correct" means, the error stream,
  the rolling metrics (:class:`RollingBinaryMetrics`), the label-free estimate, validation and serving

Recommended configuration (``detectors/README.md``; ``benchmarks/detection.py`` marks it with ``*``): for a
model's error stream :data:`RECOMMENDED_ERROR_DETECTOR` (``adwin``) with :func:`recommended_params` (delta
1e-4), what the stream processor runs; ``gaussian_cusum`` for a numeric stream, one ``bernoulli_cusum`` per
category for a categorical stream, :class:`FeatureSetDrift` with ``ks`` / ``chi2`` for the features of a
model. Budgeted detectors take ``false_alarms_per_100k``, derive their thresholds from it and default to
:data:`DEFAULT_FALSE_ALARMS_PER_100K` (0.1).
"""

from __future__ import annotations

from .base import DriftSignal, StreamDetector, TestResult, WindowTest
from .calibration import DEFAULT_FALSE_ALARMS_PER_100K
from .exceptions import DetectorError, UnknownNameError
from .feature_set import FeatureDrift, FeatureSetDrift
from .metrics import RollingBinaryMetrics
from .performance import ExpectedAccuracy
from .registry import (
    RECOMMENDED_ERROR_DETECTOR,
    available_detectors,
    available_tests,
    get_detector,
    get_test,
    recommended_params,
)
from .sequential_features import SequentialDrift, SequentialFeatureDrift
from .tasks import BinaryClassification, Task, available_tasks, get_task

__all__ = [
    "BinaryClassification",
    "DEFAULT_FALSE_ALARMS_PER_100K",
    "DetectorError",
    "DriftSignal",
    "ExpectedAccuracy",
    "FeatureDrift",
    "FeatureSetDrift",
    "RECOMMENDED_ERROR_DETECTOR",
    "RollingBinaryMetrics",
    "SequentialDrift",
    "SequentialFeatureDrift",
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
    "recommended_params",
]
