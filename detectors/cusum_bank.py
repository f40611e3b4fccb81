"""A bank of one-sided CUSUMs updated a batch at a time, in exact integer arithmetic.

Each statistic follows Lindley's recursion ``S_t = max(0, S_(t-1) + x_t)``. Over a batch it has the
closed form ``S_t = C_t - min(-S_0, min_(s<=t) C_s)`` with ``C`` the cumulative sum of the increments,
so a batch is a few numpy passes over a (rows x statistics) matrix, never a Python loop per row.
Increments are rounded to multiples of ``2**-SCALE_BITS`` first: integer sums are associative, so the
statistics, the alarm rows and the change points are the same however the stream is cut into batches
(floating-point cumulative sums would differ in their last bits between batchings, and now and then the
row of an alarm with them).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from . import kernels

__all__ = ["SCALE_BITS", "BankAlarm", "CusumBank", "quantise"]

SCALE_BITS = 24
_SCALE = float(1 << SCALE_BITS)
_CHUNK = 1 << 15  # elements of a row chunk of the increments (256 KiB of int64)


def quantise(values: np.ndarray) -> np.ndarray:
    """Increments (or thresholds) as integers in units of ``2**-SCALE_BITS``."""
    return np.rint(np.asarray(values, dtype=float) * _SCALE).astype(np.int64)


@dataclass(frozen=True, slots=True)
class BankAlarm:
    """Statistic ``column`` crossed its threshold at batch row ``row``; its run (the rows since it last
    was zero) started at absolute row ``run_start`` (the estimated change point)."""

    column: int
    row: int
    value: float
    threshold: float
    run_start: int


class CusumBank:
    """``k`` one-sided CUSUMs with thresholds ``thresholds`` (log-likelihood-ratio units).

    ``update(increments, first_row)`` takes a (rows x k) matrix of increments and the absolute row
    number of its first row; it returns the first alarm among ``active`` columns (or None) and stops
    there (every statistic has taken the rows up to the alarm's): the caller resets what the alarm
    concerns and feeds the rest of the batch again.

    >>> bank = CusumBank(np.array([3.0]))
    >>> inc = np.array([[-1.0], [2.0], [-0.5], [2.0], [0.0]])
    >>> bank.update(inc, 0, np.array([True]))
    BankAlarm(column=0, row=3, value=3.5, threshold=3.0, run_start=1)
    >>> a = CusumBank(np.array([3.0]))
    >>> [a.update(inc[i : i + 1], i, np.array([True])) for i in range(3)] == [None] * 3
    True
    >>> a.update(inc[3:], 3, np.array([True]))
    BankAlarm(column=0, row=0, value=3.5, threshold=3.0, run_start=1)
    """

    def __init__(self, thresholds: np.ndarray) -> None:
        self.thresholds = np.asarray(thresholds, dtype=float)
        self._h = quantise(self.thresholds)
        self.values = np.zeros(self._h.size, dtype=np.int64)
        self.run_start = np.zeros(self._h.size, dtype=np.int64)  # first row of the current run

    def levels(self) -> np.ndarray:
        """Each statistic as a fraction of its threshold (1.0: it alarms)."""
        return self.values / np.maximum(self._h, 1)

    def reset(self, columns: np.ndarray, next_row: int) -> None:
        """Statistics ``columns`` back to zero; a new run may start at ``next_row``."""
        self.values[columns] = 0
        self.run_start[columns] = next_row

    def update(self, increments: np.ndarray, first_row: int, active: np.ndarray) -> BankAlarm | None:
        n = increments.shape[0]
        cols = np.flatnonzero(active)
        if n == 0 or cols.size == 0:
            return None
        if kernels.available():  # one pass over the rows (detectors/kernels.py): the same integers
            found = kernels.cusum_update(
                increments, cols, self.values, self.run_start, self._h, first_row, _SCALE
            )
            if found is None:
                return None
            col, row, value = found
            return BankAlarm(
                col, row, value / _SCALE, float(self.thresholds[col]), run_start=int(self.run_start[col])
            )
        step = max(64, _CHUNK // cols.size)  # rows at a time: the passes over a chunk stay in cache
        for lo in range(0, n, step):
            alarm = self._update(increments[lo : lo + step], first_row + lo, cols)
            if alarm is not None:
                return replace(alarm, row=alarm.row + lo)
        return None

    def _update(self, increments: np.ndarray, first_row: int, cols: np.ndarray) -> BankAlarm | None:
        n = increments.shape[0]
        x = np.multiply(increments if cols.size == increments.shape[1] else increments[:, cols], _SCALE)
        c = np.rint(x, out=x).astype(np.int64)  # quantise(), in place
        np.cumsum(c, axis=0, out=c)
        floor = np.minimum.accumulate(c, axis=0)
        np.minimum(floor, -self.values[cols], out=floor)
        s = np.subtract(c, floor, out=c)
        over = s > self._h[cols]
        hit = over.any(axis=0)
        alarm = None
        if hit.any():
            rows = np.where(hit, np.argmax(over, axis=0), n)
            j = int(np.argmin(rows))  # the earliest alarm; ties: the lowest column
            row = int(rows[j])
            s = s[: row + 1]
            col = int(cols[j])
            value = float(s[row, j]) / _SCALE
            alarm = (col, row, value, float(self.thresholds[col]))
        self.values[cols] = s[-1]
        zero = s == 0
        last_zero = s.shape[0] - 1 - np.argmax(zero[::-1], axis=0)
        self.run_start[cols] = np.where(zero.any(axis=0), first_row + last_zero + 1, self.run_start[cols])
        if alarm is None:
            return None
        return BankAlarm(*alarm, run_start=int(self.run_start[alarm[0]]))
