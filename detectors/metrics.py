"""Rolling quality of a binary classifier over its last ``window`` labelled predictions.

Metrics follow Driftline's metric interface: ``update`` adds a batch (the oldest events leave a
full window), ``revert`` removes the oldest events, ``get`` reads every metric. Accuracy is kept
on a ring buffer (O(1) per event); ROC AUC is computed on demand over the window with one sort,
matching ``sklearn.metrics.roc_auc_score``. Labels are compared as given (``1`` and ``"1"`` are the
same class), column by column.

>>> import numpy as np
>>> perf = RollingBinaryMetrics(window=4)
>>> perf.update([1, 1, 1, 0], [1, 1, 0, 0], [.9, .8, .3, .6])
>>> perf.get()
{'accuracy': 0.75, 'roc_auc': 0.6666666666666666}
>>> perf.update([1], [0], [.2])  # the oldest event leaves the window
>>> perf.accuracy(), perf.n
(0.5, 4)
>>> perf.revert(1)  # and the next oldest is taken out
>>> round(perf.accuracy(), 3), perf.n
(0.333, 3)
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["RollingBinaryMetrics", "as_labels", "is_positive", "labels_equal", "roc_auc"]

_POSITIVE = frozenset({"1", "1.0", "true", "yes", "y", "pos", "positive"})
_FEW = 32  # distinct label values a batch is mapped by value (else one by one)


def as_labels(values: Any) -> np.ndarray:
    """A 1-D object array of label values, each kept as given (no coercion between 1 and "1")."""
    if isinstance(values, np.ndarray):
        return values.astype(object, copy=False).ravel()
    out = np.empty(len(values), dtype=object)
    out[:] = list(values)
    return out


def labels_equal(y_true: Any, y_pred: Any) -> np.ndarray:
    """Whether each prediction equals its label: equal values, or the same text (``1`` and ``"1"``).

    >>> labels_equal([1, "1", 0, "yes"], [1, 1, 1, "yes"]).tolist()
    [True, True, False, True]
    """
    a, b = as_labels(y_true), as_labels(y_pred)
    if a.shape != b.shape:
        raise ValueError(f"y_true and y_pred must have equal lengths, got {a.size} and {b.size}")
    same = np.asarray(a == b, dtype=bool)
    diff = np.flatnonzero(~same)
    if diff.size:  # only the mismatches are compared as text
        same[diff] = a[diff].astype(str) == b[diff].astype(str)
    return same


def _positive(label: object) -> bool:
    return label is True or str(label).strip().lower() in _POSITIVE


def is_positive(labels: Any, positive_class: str | int | bool | None = None) -> np.ndarray:
    """The positive class of binary labels given as 1/0, True/False or yes/no strings; or, given a
    ``positive_class`` other than 1/True, the labels equal to it.

    >>> is_positive([1, 0, "yes", " True", 1.0, "no", False]).tolist()
    [True, False, True, True, True, False, False]
    >>> is_positive(["bad", "good", "bad"], "bad").tolist()
    [True, False, True]
    """
    a = as_labels(labels)
    if positive_class is not None and not _positive(positive_class):
        return labels_equal(a, np.full(a.size, positive_class, dtype=object))
    distinct = set(a.tolist())
    if len(distinct) > _FEW:
        return np.fromiter((_positive(v) for v in a.tolist()), bool, a.size)
    out = np.zeros(a.size, dtype=bool)
    # values equal to each other (1, 1.0, True) are all positive or all not
    for v in distinct:
        if _positive(v):
            out |= np.asarray(a == v, dtype=bool)
    return out


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


class RollingBinaryMetrics:
    """Accuracy (the headline metric) and ROC AUC over the last ``window`` labelled predictions.

    Each event also carries its prediction's arrival ``index`` and ``time`` so :meth:`span` can say
    which stretch of the stream the window covers.
    """

    names = ("accuracy", "roc_auc")
    positive_class: str | int | bool | None = None  # a class default: checkpoints from before it existed

    def __init__(self, window: int, positive_class: str | int | bool | None = None) -> None:
        if int(window) != window or window < 1:
            raise ValueError(f"window must be an integer >= 1, got {window}")
        self.window = int(window)
        self.positive_class = positive_class
        self._reset()

    def _reset(self) -> None:
        w = self.window
        self._correct = np.zeros(w, dtype=bool)
        self._score = np.full(w, np.nan)
        self._pos = np.zeros(w, dtype=bool)
        self._index = np.zeros(w, dtype=np.int64)
        self._time = np.zeros(w)
        self._head = 0  # next slot to write
        self.n = 0  # events in the window
        self._n_correct = 0
        self.total = 0

    def reset(self) -> None:
        self._reset()

    def update(
        self,
        y_true: Any,
        y_pred: Any,
        y_score: Any,
        index: np.ndarray | None = None,
        time: np.ndarray | None = None,
    ) -> None:
        """Add a batch of labelled predictions (labels, predicted classes, positive-class scores)."""
        correct = labels_equal(y_true, y_pred)
        positive = is_positive(y_true, self.positive_class)
        scores = np.asarray(y_score, dtype=float).ravel()
        k = correct.size
        index = np.zeros(k, dtype=np.int64) if index is None else index
        time = np.zeros(k) if time is None else time
        if k >= self.window:  # the batch alone fills the window
            w = self.window
            correct, scores, positive = correct[-w:], scores[-w:], positive[-w:]
            index, time = index[-w:], time[-w:]
            k = w
        idx = (self._head + np.arange(k)) % self.window
        # empty slots hold False, so subtracting what is overwritten reverts exactly
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

    def revert(self, n: int = 1) -> None:
        """Remove the ``n`` oldest events from the window."""
        k = max(0, min(int(n), self.n))
        idx = self._valid()[:k]
        self._n_correct -= int(self._correct[idx].sum())
        self._correct[idx] = False
        self.n -= k

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
        """(scores, 0/1 labels) of the events in the window, oldest first."""
        idx = self._valid()
        return self._score[idx].copy(), self._pos[idx].astype(int)

    def accuracy(self) -> float:
        return self._n_correct / self.n if self.n else float("nan")

    def roc_auc(self) -> float:
        idx = self._valid()
        s, p = self._score[idx], self._pos[idx]
        ok = ~np.isnan(s)
        return roc_auc(s[ok], p[ok])

    def headline(self) -> float:
        """The metric a performance floor watches: accuracy."""
        return self.accuracy()

    def headline_se(self) -> float:
        a = self.accuracy()
        return math.sqrt(a * (1 - a) / self.n) if self.n else math.nan

    def get(self) -> dict[str, float]:
        return {"accuracy": self.accuracy(), "roc_auc": self.roc_auc()}

    def __repr__(self) -> str:
        return f"RollingBinaryMetrics(window={self.window}, n={self.n})"
