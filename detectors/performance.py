"""Label-free performance estimates: expected accuracy from predicted probabilities (binary: the
positive-class probability; multiclass: the top-class probability), and the estimate a task without
one (regression) returns."""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["AccuracyCheck", "ExpectedAccuracy", "NoEstimate", "TopClassAccuracy"]


def confidence(proba: Any) -> np.ndarray:
    """Confidence of each prediction: the top class probability. A 1-D array holds binary
    positive-class probabilities ``p`` (confidence ``max(p, 1 - p)``)."""
    p = np.asarray(proba, dtype=float)
    if p.ndim == 1:
        return np.maximum(p, 1 - p)
    if p.ndim == 2:
        return p.max(axis=1)
    raise ValueError(f"proba must be 1-D (binary) or 2-D (n, classes), got shape {p.shape}")


def predicted_class(proba: Any) -> np.ndarray:
    p = np.asarray(proba, dtype=float)
    return (p >= 0.5).astype(int) if p.ndim == 1 else p.argmax(axis=1)


@dataclass(frozen=True, slots=True)
class AccuracyCheck:
    """Estimated (label-free) against realised accuracy on the same labelled rows.

    ``std_error`` is the standard deviation of the realised accuracy if the calibrated confidences
    were right (a Poisson-binomial), so ``z = (realised - estimated) / std_error``; ``consistent`` is
    ``|z| <= 3``. An inconsistent check means the confidences stopped being calibrated (e.g. concept
    drift: the inputs look familiar but the labels changed), which no label-free estimate can see.
    """

    estimated: float
    realised: float
    rows: int
    std_error: float
    z: float
    consistent: bool


class ExpectedAccuracy:
    """Confidence-based expected accuracy (CBPE-style) over a sliding window of predictions.

    The expected accuracy is the mean calibrated confidence: if a prediction with confidence ``c``
    is right with probability ``c``, the window's accuracy is expected to be ``mean(c)``. Raw model
    confidences are seldom calibrated, so :meth:`fit` learns a histogram-binning map (``bins`` equal
    width confidence bins -> accuracy observed in that bin, with a +1/+2 prior) from a labelled
    reference; without it the raw confidence is used (average-confidence estimate). ``update`` /
    ``revert`` / ``get`` follow Driftline's metric interface; :meth:`check` compares the estimate to
    realised accuracy once labels arrive.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> p = rng.uniform(0, 1, 20_000)                  # positive-class probability
    >>> y = (rng.uniform(0, 1, p.size) < p).astype(int)  # well calibrated model
    >>> est = ExpectedAccuracy(window_size=5000).fit(p[:10_000], y[:10_000])
    >>> est.update(p[10_000:])
    >>> round(est.get(), 3)
    0.75
    >>> c = est.check(p[-5000:], y[-5000:])
    >>> round(c.realised, 3), c.consistent
    (0.75, True)
    >>> est.update(rng.uniform(0.3, 0.7, 5000))        # drifted inputs: the model is unsure
    >>> round(est.get(), 3)                            # expected accuracy drops, before any label
    0.604
    """

    name = "expected_accuracy"  # the metric it is published as

    def __init__(self, window_size: int = 1000, bins: int = 10) -> None:
        if int(window_size) != window_size or window_size < 1:
            raise ValueError(f"window_size must be an integer >= 1, got {window_size}")
        if int(bins) != bins or bins < 1:
            raise ValueError(f"bins must be an integer >= 1, got {bins}")
        self.window_size = int(window_size)
        self.bins = int(bins)
        self._map: np.ndarray | None = None
        self._reset()

    def _reset(self) -> None:
        self._window: deque[float] = deque()
        self._sum = 0.0

    def reset(self) -> None:
        self._reset()

    def fit(self, proba: Any, labels: Any) -> ExpectedAccuracy:
        """Learn the calibration map from labelled reference predictions; returns ``self``."""
        c = self._confidence(proba)
        right = self._right(proba, labels)
        b = self._bin(c)
        hits = np.bincount(b, weights=right.astype(float), minlength=self.bins)
        count = np.bincount(b, minlength=self.bins)
        mids = (np.arange(self.bins) + 0.5) / self.bins
        # shrink sparse bins towards the bin's raw confidence (prior worth 2 rows)
        self._map = (hits + 2 * mids) / (count + 2)
        return self

    def _confidence(self, proba: Any) -> np.ndarray:
        return confidence(proba)

    def _right(self, proba: Any, labels: Any) -> np.ndarray:
        return np.asarray(predicted_class(proba) == np.asarray(labels))

    def _bin(self, c: np.ndarray) -> np.ndarray:
        return np.minimum((c * self.bins).astype(int), self.bins - 1)

    def calibrated(self, proba: Any) -> np.ndarray:
        """Probability that each prediction is right."""
        c = self._confidence(proba)
        return c if self._map is None else self._map[self._bin(c)]

    def update(self, proba: Any) -> None:
        """Add predictions (a batch; 1-D binary probabilities or 2-D class probabilities)."""
        for v in self.calibrated(proba).tolist():
            self._window.append(v)
            self._sum += v
            if len(self._window) > self.window_size:
                self._sum -= self._window.popleft()

    def revert(self, n: int = 1) -> None:
        """Remove the ``n`` oldest predictions from the window."""
        for _ in range(min(n, len(self._window))):
            self._sum -= self._window.popleft()

    def get(self) -> float:
        """Expected accuracy of the predictions in the window (NaN when empty)."""
        return self._sum / len(self._window) if self._window else math.nan

    def check(self, proba: Any, labels: Any) -> AccuracyCheck:
        """Compare the estimate with realised accuracy on the same (now labelled) predictions."""
        q = self.calibrated(proba)
        right = self._right(proba, labels)
        n = int(q.size)
        if n == 0:
            return AccuracyCheck(math.nan, math.nan, 0, math.nan, math.nan, True)
        est, real = float(q.mean()), float(right.mean())
        se = math.sqrt(float(np.sum(q * (1 - q)))) / n
        z = (real - est) / se if se > 0 else (0.0 if real == est else math.inf)
        return AccuracyCheck(est, real, n, se, z, abs(z) <= 3)


class TopClassAccuracy(ExpectedAccuracy):
    """:class:`ExpectedAccuracy` for a multiclass model whose stream carries each prediction's top-class
    probability (its ``score``): the confidence is the score itself, and :meth:`fit` / :meth:`check` take
    whether each prediction was right (1/0) instead of labels. Calibrated the same way (histogram
    binning of confidence -> observed accuracy on the first labelled window).

    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> top = rng.uniform(0.34, 1.0, 20_000)                 # three classes: top probability >= 1/3
    >>> right = (rng.uniform(0, 1, top.size) < top).astype(int)
    >>> est = TopClassAccuracy(window_size=5000).fit(top[:10_000], right[:10_000])
    >>> est.update(top[10_000:])
    >>> round(est.get(), 2), round(float(right[-5000:].mean()), 2)
    (0.67, 0.67)
    >>> est.update(rng.uniform(0.34, 0.6, 5000))              # unsure on new inputs: estimate drops
    >>> round(est.get(), 2)
    0.46
    """

    name = "expected_accuracy"

    def _confidence(self, proba: Any) -> np.ndarray:
        return np.clip(np.asarray(proba, dtype=float).ravel(), 0.0, 1.0)

    def _right(self, proba: Any, labels: Any) -> np.ndarray:
        return np.asarray(labels).astype(bool)


class NoEstimate:
    """What a task without a label-free estimate (regression: a predicted value carries no confidence)
    returns: ``available`` is False, ``get`` is NaN (left out of the published metrics), ``fit`` and
    ``update`` do nothing, so the processor needs no special case.

    >>> est = NoEstimate()
    >>> est.update([0.3]); est.available, est.get()
    (False, nan)
    """

    name = "label_free_estimate"
    available = False

    def fit(self, scores: Any, targets: Any) -> NoEstimate:
        return self

    def update(self, scores: Any) -> None:
        return None

    def revert(self, n: int = 1) -> None:
        return None

    def get(self) -> float:
        return math.nan
