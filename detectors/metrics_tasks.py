"""Rolling quality of regression and multiclass models over their last ``window`` labelled predictions.

The same interface as :class:`~detectors.metrics.RollingBinaryMetrics` (``update`` / ``revert`` /
``get`` / ``headline`` / ``span`` / ``window_arrays``), kept on ring buffers: an update writes a batch
into the ring (O(batch)), ``get`` computes the metrics over the window with a few numpy reductions
(O(window), called once per ``metrics_every`` labelled predictions, never per event).

>>> import numpy as np
>>> reg = RollingRegressionMetrics(window=4)
>>> reg.update([1.0, 2.0, 3.0, 4.0], [1.5, 2.0, 2.0, 4.0], None)
>>> reg.get()
{'mae': 0.375, 'rmse': 0.5590169943749475}
>>> mc = RollingMulticlassMetrics(window=6)
>>> mc.update(["a", "b", "c", "a", "b", "c"], ["a", "b", "b", "a", "c", "c"], [.9, .8, .4, .7, .5, .6])
>>> {k: round(v, 3) for k, v in mc.get().items()}
{'accuracy': 0.667, 'macro_f1': 0.667, 'recall_a': 1.0, 'recall_b': 0.5, 'recall_c': 0.5}
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .metrics import as_labels

__all__ = ["MAX_CLASSES", "RollingMulticlassMetrics", "RollingRegressionMetrics", "class_keys"]

MAX_CLASSES = 64
"""Classes a multiclass model's metrics tell apart; later ones are pooled as ``other`` (bounded state
and a bounded set of metric names, whatever the labels hold)."""
REPORTED_RECALLS = 20  # per-class recall metrics published (the first classes seen)
OTHER = "other"


class _Ring:
    """A window of the newest ``window`` events as parallel numpy columns, with arrival index and time."""

    def __init__(self, window: int) -> None:
        if int(window) != window or window < 1:
            raise ValueError(f"window must be an integer >= 1, got {window}")
        self.window = int(window)
        self._reset()

    def _reset(self) -> None:
        self._cols: dict[str, np.ndarray] = {}
        self._index = np.zeros(self.window, dtype=np.int64)
        self._time = np.zeros(self.window)
        self._head = 0
        self.n = 0
        self.total = 0

    def reset(self) -> None:
        self._reset()

    def _write(self, index: np.ndarray | None, time: np.ndarray | None, **cols: np.ndarray) -> None:
        k = len(next(iter(cols.values())))
        index = np.zeros(k, dtype=np.int64) if index is None else np.asarray(index)
        time = np.zeros(k) if time is None else np.asarray(time, dtype=float)
        w = self.window
        if k > w:  # the batch alone fills the window
            cols = {c: v[-w:] for c, v in cols.items()}
            index, time, k = index[-w:], time[-w:], w
        idx = (self._head + np.arange(k)) % w
        for name, values in cols.items():
            col = self._cols.get(name)
            if col is None:
                col = self._cols[name] = np.zeros(w, dtype=values.dtype)
            col[idx] = values
        self._index[idx] = index
        self._time[idx] = time
        self._head = (self._head + k) % w
        self.n = min(w, self.n + k)
        self.total += k

    def revert(self, n: int = 1) -> None:
        """Remove the ``n`` oldest events from the window."""
        self.n -= max(0, min(int(n), self.n))

    def _valid(self) -> np.ndarray:
        return (self._head - self.n + np.arange(self.n)) % self.window

    def _col(self, name: str) -> np.ndarray:
        col = self._cols.get(name)
        return np.empty(0) if col is None else col[self._valid()]

    def span(self) -> tuple[int, int, float, float]:
        """(first, last prediction index, first, last prediction time) of the events in the window."""
        idx = self._valid()
        if not idx.size:
            return 0, 0, 0.0, 0.0
        i, t = self._index[idx], self._time[idx]
        return int(i.min()), int(i.max()), float(t.min()), float(t.max())


def _floats(values: Any) -> np.ndarray:
    return np.asarray(as_labels(values).tolist(), dtype=float)


class RollingRegressionMetrics(_Ring):
    """MAE (the headline: lower is better) and RMSE of the window's residuals ``y_true - y_pred``."""

    names = ("mae", "rmse")

    def update(
        self,
        y_true: Any,
        y_pred: Any,
        y_score: Any,
        index: np.ndarray | None = None,
        time: np.ndarray | None = None,
    ) -> None:
        """Add a batch of labelled predictions (targets and predicted values; scores are not used)."""
        residual = _floats(y_true) - _floats(y_pred)
        self._write(index, time, residual=residual)

    def mae(self) -> float:
        r = self._col("residual")
        return float(np.abs(r).mean()) if r.size else math.nan

    def rmse(self) -> float:
        r = self._col("residual")
        return float(np.sqrt(np.mean(r * r))) if r.size else math.nan

    def headline(self) -> float:
        return self.mae()

    def headline_se(self) -> float:
        """Standard error of the window's MAE (the SD of the absolute residuals over ``sqrt(n)``)."""
        r = np.abs(self._col("residual"))
        return float(r.std(ddof=1) / math.sqrt(r.size)) if r.size > 1 else math.nan

    def get(self) -> dict[str, float]:
        return {"mae": self.mae(), "rmse": self.rmse()}

    def window_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """No scores: a regression model has no label-free estimate to calibrate (NaN scores)."""
        return np.full(self.n, np.nan), self._col("residual")

    def __repr__(self) -> str:
        return f"RollingRegressionMetrics(window={self.window}, n={self.n})"


def _key(text: str) -> str:
    """``"2.0"`` and ``"2"`` are the same class (a label sent as a float, a prediction as an int)."""
    if text.endswith(".0") and text[:-2].lstrip("-").isdigit():
        return text[:-2]
    return text


def class_keys(values: Any) -> np.ndarray:
    """Each label as its class key (text; ``2``, ``2.0`` and ``"2"`` are one class), without a Python
    call per row: the distinct values are few, each is normalised once.

    >>> class_keys([2, 2.0, "2", "cat", True]).tolist()
    ['2', '2', '2', 'cat', 'True']
    """
    text = as_labels(values).astype(str)
    uniq, inverse = np.unique(text, return_inverse=True)
    keys = np.array([_key(u) for u in uniq.tolist()], dtype=object)
    return keys[inverse.ravel()] if keys.size else np.empty(0, dtype=object)


class RollingMulticlassMetrics(_Ring):
    """Accuracy (the headline), macro-F1 over the classes in the window (labelled or predicted, as
    ``sklearn.metrics.f1_score(average="macro")``) and the recall of each class (its own error stream:
    the share of its labelled predictions that were right) for the first :data:`REPORTED_RECALLS`
    classes seen."""

    def __init__(self, window: int) -> None:
        super().__init__(window)
        self.classes: dict[str, int] = {}  # class key -> code, in order of first appearance

    def _codes(self, values: Any) -> np.ndarray:
        keys = class_keys(values)
        uniq, inverse = np.unique(keys.astype(str), return_inverse=True)
        codes = np.empty(uniq.size, dtype=np.int32)
        for j, u in enumerate(uniq.tolist()):
            code = self.classes.get(u)
            if code is None:
                code = self.classes.setdefault(
                    u if len(self.classes) < MAX_CLASSES else OTHER, len(self.classes)
                )
            codes[j] = code
        return codes[inverse.ravel()]

    def update(
        self,
        y_true: Any,
        y_pred: Any,
        y_score: Any,
        index: np.ndarray | None = None,
        time: np.ndarray | None = None,
    ) -> None:
        """Add a batch (labels, predicted classes, each prediction's top-class probability or NaN)."""
        true, pred = self._codes(y_true), self._codes(y_pred)
        k = true.size
        score = np.full(k, np.nan) if y_score is None else np.asarray(y_score, dtype=float).ravel()
        self._write(index, time, true=true, pred=pred, score=score)

    def accuracy(self) -> float:
        t, p = self._col("true"), self._col("pred")
        return float(np.mean(t == p)) if t.size else math.nan

    def _counts(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        t, p = self._col("true").astype(np.int64), self._col("pred").astype(np.int64)
        m = len(self.classes)
        right = np.bincount(t[t == p], minlength=m)
        return right, np.bincount(t, minlength=m), np.bincount(p, minlength=m)

    def macro_f1(self) -> float:
        right, true, pred = self._counts()
        present = (true + pred) > 0
        if not present.any():
            return math.nan
        return float(np.mean(2 * right[present] / (true[present] + pred[present])))

    def headline(self) -> float:
        return self.accuracy()

    def headline_se(self) -> float:
        a = self.accuracy()
        return math.sqrt(a * (1 - a) / self.n) if self.n else math.nan

    def get(self) -> dict[str, float]:
        right, true, _ = self._counts()
        out = {"accuracy": self.accuracy(), "macro_f1": self.macro_f1()}
        for name, code in list(self.classes.items())[:REPORTED_RECALLS]:
            if true[code]:
                out[f"recall_{name}"] = float(right[code] / true[code])
        return out

    def window_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """(top-class probabilities, 1 where the prediction was right) of the window, oldest first."""
        return self._col("score").copy(), (self._col("true") == self._col("pred")).astype(int)

    def __repr__(self) -> str:
        return f"RollingMulticlassMetrics(window={self.window}, n={self.n}, classes={len(self.classes)})"
