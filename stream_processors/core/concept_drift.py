"""Concept drift: the task's error stream through a sequential detector, as alerts.

An alarm says what the error rate was before the change and what it is after, from windows that
bracket the change point: the monitor keeps the newest ``memory`` errors (a ring of arrays, one
copy per batch), estimates the change point among them at the alarm (:func:`change_point`), and
reports the rate over up to ``window`` errors before it (``reference``, ``before``) and over the
errors from it to the alarm (``window``, ``after``), in the order of their predictions, with their
difference as ``effect`` and its direction -- not the detector's own sub-window means, which
can straddle the change.

>>> import numpy as np
>>> from detectors import get_detector
>>> from driftline.contracts import Window
>>> from stream_processors.core.labelled import AlertContext
>>> rng = np.random.default_rng(0)
>>> errors = np.r_[rng.random(3000) < 0.1, rng.random(1000) < 0.5].astype(float)
>>> monitor = ConceptDriftMonitor("churn", "1", get_detector("adwin", delta=1e-4))
>>> ctx = AlertContext(Window(start_index=0, end_index=1, start_time=0.0, end_time=0.0, n=1), "")
>>> positions = np.arange(errors.size)
>>> alerts = monitor.update(errors, positions, lambda k: float(k), lambda k: ctx)
>>> [(a.type, a.detected_at_index) for a in alerts][:1]
[('concept_drift', 3071)]
>>> a = alerts[0]; round(a.before, 2), round(a.after, 2), a.direction, a.window.start_index
(0.11, 0.52, 'increase', 2997)
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np

from detectors.base import StreamDetector
from driftline.contracts import Alert, Window
from stream_processors.core.labelled import AlertContext, labelled_alert, with_change

__all__ = ["ConceptDriftMonitor", "change_point"]

_MIN_SIDE = 10  # errors on each side of a change point


def change_point(x: np.ndarray) -> int:
    """The split of ``x`` that maximises the standardised CUSUM of its deviations from the mean (the
    most likely single shift of the mean; unstandardised, it is pulled towards the middle), keeping
    ``_MIN_SIDE`` values on each side when there are enough.

    >>> change_point(np.r_[np.zeros(50), np.ones(20)])
    50
    """
    n = x.size
    if n < 2 * _MIN_SIDE:
        return n // 2
    s = np.arange(_MIN_SIDE, n - _MIN_SIDE + 1)
    dev = np.abs(np.cumsum(x - x.mean()))[s - 1] / np.sqrt(s * (n - s))  # the likelihood-ratio scale
    return int(s[np.argmax(dev)])


class ConceptDriftMonitor:
    """Feeds a version's error stream (1.0 = wrong, for classification) to ``detector``; every alarm
    becomes a ``concept_drift`` alert at the stream position of the row that raised it."""

    _errors: np.ndarray | None = None  # the newest errors, their positions and times (class defaults:
    _where: np.ndarray | None = None  # checkpoints from before these existed)
    _when: np.ndarray | None = None
    window, memory = 1000, 4000

    error_name = "error rate"  # a class default: checkpoints from before it existed

    def __init__(
        self,
        model: str,
        version: str,
        detector: StreamDetector,
        *,
        window: int = 1000,
        error_name: str = "error rate",
    ) -> None:
        """``error_name``: what the error stream's mean is called in messages (the task's word:
        "error rate" for classifiers, "mean absolute error" for regression)."""
        self.error_name = error_name
        self.model = model
        self.version = version
        self.detector = detector
        self.window = window
        self.memory = 4 * window

    def update(
        self,
        errors: np.ndarray,
        at: np.ndarray,
        label_time: Callable[[int], float],
        context: Callable[[int], AlertContext],
        index: np.ndarray | None = None,
        times: np.ndarray | None = None,
    ) -> list[Alert]:
        """``at[k]``/``label_time(k)``/``context(k)``: where and when row ``k``'s alarm is raised, and
        what it reports; ``index[k]``/``times[k]``: row ``k``'s prediction's arrival index and event
        time (default: ``at[k]`` and its label time), the order in which the change is looked for."""
        n = errors.size
        if index is None:
            index = at
        if times is None:
            times = np.fromiter((label_time(k) for k in range(n)), float, n)
        before = self.detector.n
        past = self._past()
        alerts = []
        for sig in self.detector.update_many(errors):
            k = min(n - 1, max(0, sig.index - before - 1))
            alert = labelled_alert(
                self.model,
                self.version,
                "concept_drift",
                int(at[k]),
                label_time(k),
                sig.statistic,
                sig.value,
                sig.threshold,
                f"{sig.detector} {sig.statistic}={sig.value:.4g} crossed {sig.threshold:.4g}; ",
                partial(context, k),
            )
            alerts.append(self._bracket(alert, past, errors[: k + 1], index[: k + 1], times[: k + 1]))
        self._remember(past, errors, index, times)
        return alerts

    def _past(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._errors is None or self._where is None or self._when is None:
            return np.empty(0), np.empty(0, np.int64), np.empty(0)
        return self._errors, self._where, self._when

    def _remember(
        self,
        past: tuple[np.ndarray, np.ndarray, np.ndarray],
        errors: np.ndarray,
        at: np.ndarray,
        t: np.ndarray,
    ) -> None:
        m = self.memory
        self._errors = np.r_[past[0], errors.astype(float)][-m:]
        self._where = np.r_[past[1], at.astype(np.int64)][-m:]
        self._when = np.r_[past[2], t.astype(float)][-m:]

    def _bracket(
        self,
        alert: Alert,
        past: tuple[np.ndarray, np.ndarray, np.ndarray],
        errors: np.ndarray,
        at: np.ndarray,
        t: np.ndarray,
    ) -> Alert:
        """``alert`` with the error rates before and after the change point among the newest errors,
        in the order of their predictions (labels arrive out of order; the change is in the stream)."""
        x = np.r_[past[0], errors.astype(float)][-self.memory :]
        where = np.r_[past[1], at.astype(np.int64)][-self.memory :]
        when = np.r_[past[2], t.astype(float)][-self.memory :]
        order = np.argsort(where, kind="stable")
        x, where, when = x[order], where[order], when[order]
        cut = change_point(x)
        lo = max(0, cut - self.window)
        rate0, rate1 = float(x[lo:cut].mean()), float(x[cut:].mean())

        def span(a: int, b: int) -> Window:
            return Window(
                start_index=int(where[a]),
                end_index=int(where[b - 1]) + 1,
                start_time=float(when[a]),
                end_time=float(when[b - 1]),
                n=b - a,
            )

        what = (
            f"{self.error_name} {rate0:.3f} -> {rate1:.3f} "
            f"(events {int(where[lo])}..{int(where[cut - 1])} vs {int(where[cut])}..{int(where[-1])}); "
        )
        return with_change(
            alert,
            rate0,
            rate1,
            reference=span(lo, cut),
            window=span(cut, x.size),
            message=what + alert.message,
        )
