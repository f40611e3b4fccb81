"""Rolling classification quality over the last ``window`` labelled predictions.

Accuracy is kept with update/revert on a ring buffer (O(1) per event); ROC AUC is computed on
demand over the window with one sort (vectorised), matching ``sklearn.metrics.roc_auc_score``.

>>> import numpy as np
>>> perf = RollingPerformance(window=4)
>>> perf.update(np.array([1, 1, 0, 1], bool), np.array([.9, .8, .3, .6]), np.array([1, 1, 1, 0], bool))
>>> perf.accuracy(), perf.roc_auc()
(0.75, 0.6666666666666666)
>>> perf.update(np.array([0], bool), np.array([.2]), np.array([1], bool))  # oldest event leaves
>>> perf.accuracy(), perf.n
(0.5, 4)
"""

from __future__ import annotations

import numpy as np

__all__ = ["RollingPerformance", "roc_auc", "is_positive"]

_POSITIVE = {"1", "1.0", "true", "yes", "y", "pos", "positive"}


def is_positive(label: object) -> bool:
    """The positive class of a binary label given as 1/0, True/False or yes/no strings."""
    return label is True or str(label).strip().lower() in _POSITIVE


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """ROC AUC by the rank-sum formula with average ranks for ties; NaN if one class is absent."""
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    s = scores[order]
    ranks = np.empty(s.size, dtype=float)
    # average ranks over runs of ties
    edges = np.flatnonzero(np.diff(s)) + 1
    starts = np.concatenate(([0], edges))
    ends = np.concatenate((edges, [s.size]))
    avg = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(avg, ends - starts)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


class RollingPerformance:
    def __init__(self, window: int) -> None:
        if window < 1:
            raise ValueError(f"window must be >= 1, got {window}")
        self.window = window
        self._correct = np.zeros(window, dtype=bool)
        self._score = np.full(window, np.nan)
        self._pos = np.zeros(window, dtype=bool)
        self._index = np.zeros(window, dtype=np.int64)  # prediction arrival index, for the window's span
        self._time = np.zeros(window)
        self._head = 0  # next slot to write
        self.n = 0  # events in the window
        self._n_correct = 0
        self.total = 0

    def update(
        self,
        correct: np.ndarray,
        scores: np.ndarray,
        positive: np.ndarray,
        index: np.ndarray | None = None,
        time: np.ndarray | None = None,
    ) -> None:
        """Add a batch; the oldest events leave the window as new ones enter (revert)."""
        k = correct.size
        index = np.zeros(k, dtype=np.int64) if index is None else index
        time = np.zeros(k) if time is None else time
        if k >= self.window:  # the batch alone fills the window
            w = self.window
            correct, scores, positive, index, time = (
                correct[-w:],
                scores[-w:],
                positive[-w:],
                index[-w:],
                time[-w:],
            )
            k = w
        idx = (self._head + np.arange(k)) % self.window
        # slots never written hold False, so subtracting what is overwritten reverts exactly
        self._n_correct -= int(self._correct[idx].sum())
        self._correct[idx] = correct
        self._score[idx] = scores
        self._pos[idx] = positive
        self._index[idx] = index
        self._time[idx] = time
        self._n_correct += int(correct.sum())
        self._head = (self._head + k) % self.window
        self.n = min(self.window, self.n + k)
        self.total += k

    def _valid(self) -> np.ndarray:
        return (self._head - self.n + np.arange(self.n)) % self.window

    def span(self) -> tuple[int, int, float, float]:
        """(first, last prediction index, first, last prediction time) of the events in the window."""
        idx = self._valid()
        if not idx.size:
            return 0, 0, 0.0, 0.0
        i, t = self._index[idx], self._time[idx]
        return int(i.min()), int(i.max()), float(t.min()), float(t.max())

    def window_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(scores, positive) of the events in the window, oldest first."""
        idx = self._valid()
        return self._score[idx].copy(), self._pos[idx].copy()

    def accuracy(self) -> float:
        return self._n_correct / self.n if self.n else float("nan")

    def roc_auc(self) -> float:
        idx = self._valid()
        s, p = self._score[idx], self._pos[idx]
        ok = ~np.isnan(s)
        return roc_auc(s[ok], p[ok])
