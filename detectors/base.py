"""The common interface of every detector: window tests and sequential stream detectors.

Detectors are pure: no I/O, no Kafka, state explicit (picklable) so processors can checkpoint it.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

__all__ = ["DriftSignal", "PreparedTest", "StreamDetector", "TestResult", "WindowTest"]

Direction = Literal["increase", "decrease"]


@dataclass(frozen=True, slots=True)
class TestResult:
    """The outcome of a two-sample test of a current window against a reference window.

    ``effect`` is signed: for numeric features the mean shift in reference standard deviations;
    for categorical features the change in share (current - reference) of ``category``, the
    category whose share moved most. ``direction`` reads the sign ("increase"/"decrease").
    """

    test: str
    statistic: float
    p_value: float | None
    effect: float
    direction: Direction
    category: str | None = None


@runtime_checkable
class WindowTest(Protocol):
    """A two-sample test: ``test(reference, current) -> TestResult``."""

    name: str
    kind: Literal["numeric", "categorical"]

    def __call__(self, reference: np.ndarray, current: np.ndarray) -> TestResult: ...


class PreparedTest:
    """Base of Driftline's window tests. ``prepare(reference, window_size)`` does the reference's
    work once (sorting, binning, calibration) and returns ``current -> TestResult``, so a monitor
    testing window after window against one reference pays for it once; calling the test does both.
    """

    name: str = "test"
    kind: Literal["numeric", "categorical"] = "numeric"

    def prepare(self, reference: Any, window_size: int | None = None) -> Callable[[Any], TestResult]:
        raise NotImplementedError

    def __call__(self, reference: Any, current: Any) -> TestResult:
        return self.prepare(reference, len(current))(current)


@dataclass(frozen=True, slots=True)
class DriftSignal:
    """A sequential detector's alarm, ready to be published as is.

    ``index`` counts updates since the last reset (1-based: the update that raised the alarm).
    ``value`` is the detector's statistic named ``statistic`` and ``threshold`` what it crossed.
    ``baseline`` / ``recent`` (when the detector knows them) are the in-control level of the input
    (e.g. error rate before the change) and its level over the recent stretch that raised the alarm.
    """

    detector: str
    index: int
    statistic: str
    value: float
    threshold: float
    direction: Direction
    baseline: float | None = None
    recent: float | None = None


class StreamDetector:
    """Base class of sequential detectors. Subclasses set parameters in ``__init__`` (validated,
    ``ValueError`` naming the parameter), all mutable state in ``_reset()``, and implement
    ``update``. ``update_many`` runs a batch and returns every alarm.
    """

    name: str = "detector"

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self.n = 0

    def reset(self) -> None:
        self._reset()

    def update(self, x: float) -> DriftSignal | None:
        raise NotImplementedError

    def update_many(self, xs: np.ndarray | list[float]) -> list[DriftSignal]:
        out: list[DriftSignal] = []
        update = self.update
        for x in np.asarray(xs, dtype=float).tolist():
            s = update(x)
            if s is not None:
                out.append(s)
        return out

    def clone(self) -> StreamDetector:
        """A fresh detector with the same parameters and no state."""
        c = copy.deepcopy(self)
        c.reset()
        return c
