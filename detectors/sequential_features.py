"""Sequential data drift of all features of one model version, within one false-alarm budget.

After a reference of ``reference_size`` rows, every row updates a bank of CUSUMs (see
:mod:`detectors.cusum_bank`), a batch at a time and in integer arithmetic, so alarms are the same
whatever the batch boundaries:

- a numeric feature: its normal scores (:class:`~detectors.feature_streams.NumericScores`) through a
  two-sided Gaussian mean-shift CUSUM with designs ``shifts`` (reference SDs);
- a categorical feature: each bucket's share (:class:`~detectors.feature_streams.CategoryShares`,
  rare categories merged) through a two-sided Bernoulli CUSUM with designs ``odds_ratios``;
- with ``joint`` (at least two numeric features): the PCA reconstruction error of their normal scores
  (:class:`~detectors.feature_streams.Reconstruction`) through a one-sided CUSUM: a change of the joint
  distribution, e.g. a correlation, with unchanged marginals.

Budget: the model's ``false_alarms_per_100k`` is split equally across the monitored streams (features
and the joint detector; a sum of per-event rates); a feature given its own budget (``budgets``) takes
it out of the model's first, and the rest is split equally across the other streams, so the total stays
the model's. Each stream's share is split equally across its statistics (sides x designs x buckets),
whose thresholds follow from it as in :class:`~detectors.GaussianCUSUM` /
:class:`~detectors.BernoulliCUSUM` (Siegmund's approximation, raised for the estimation error of the
reference).

Reference: the first ``reference_size`` rows of the stream, or rows given before the first update
(:meth:`SequentialFeatureDrift.prime`: a training set, another version's reference); primed, every
row of the stream is monitored from the first.

An alarm names the estimated change point (where the alarming statistic last left zero) and is
explained by the window tests (KS / chi-square, and PSI) of the rows since then against the reference.
The stream then stays quiet until it came back: a tumbling window of ``rearm_window`` rows whose test
p-value exceeds ``rearm_level`` re-arms it (windows counted from the alarm, so also batch-independent).
A joint alarm while one of its features is alarmed (not yet re-armed) is not reported: that feature's
own alarm explains it (a large shift of one feature raises the reconstruction error too).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .calibration import DEFAULT_FALSE_ALARMS_PER_100K, arl_from_budget
from .cusum_bank import CusumBank
from .feature_streams import CategoryShares, NumericBlock, NumericScores, Reconstruction
from .sequential_parts import JOINT, Stream, categorical_stream, numeric_stream, window_test

__all__ = ["JOINT", "SequentialDrift", "SequentialFeatureDrift"]

Kind = Literal["numeric", "categorical"]


NumericLayout = tuple[NumericBlock, "np.ndarray | slice", list[str], set[int]]
"""The numeric streams' block, the bank columns it fills, its features and the streams' positions."""


@dataclass(frozen=True, slots=True)
class SequentialDrift:
    """One stream's alarm. Rows are 0-based positions in the update stream (reference included):
    ``row`` raised it, ``change_point`` is the first row of the run that did. ``test`` /
    ``p_value`` / ``effect`` / ``direction`` / ``category`` / ``psi`` come from the window test of rows
    ``[change_point, row]`` against the reference (numeric effect: mean shift in reference SDs;
    categorical: share change of ``category``); ``contributors`` (joint stream only) name the features
    whose part of the reconstruction error grew most."""

    feature: str
    row: int
    change_point: int
    statistic: str
    value: float
    threshold: float
    test: str
    test_statistic: float
    p_value: float | None
    effect: float
    direction: str
    category: str | None
    psi: float | None
    rows: int
    contributors: tuple[str, ...] = ()


class SequentialFeatureDrift:
    """CUSUM banks over the features of one model version (see the module's docstring).

    >>> rng = np.random.default_rng(3)
    >>> det = SequentialFeatureDrift({"age": "numeric", "plan": "categorical"}, reference_size=2000)
    >>> def rows(n, shift):
    ...     return {"age": rng.normal(40 + 10 * shift, 10, n),
    ...             "plan": rng.choice(["free", "pro"], n, p=[0.7, 0.3]).astype(object)}
    >>> det.update(rows(5000, 0.0))
    []
    >>> [(d.feature, d.row, d.change_point, d.direction) for d in det.update(rows(1000, 0.7))]
    [('age', 5072, 5031, 'increase')]
    """

    def __init__(
        self,
        kinds: Mapping[str, Kind],
        *,
        reference_size: int = 2000,
        false_alarms_per_100k: float = DEFAULT_FALSE_ALARMS_PER_100K,
        shifts: Sequence[float] = (0.25, 0.75),
        odds_ratios: Sequence[float] = (1.5, 4.0),
        min_share: float = 0.01,
        joint: Sequence[str] | None = None,
        rearm_window: int = 1000,
        rearm_level: float = 0.01,
        keep_rows: int = 5000,
        budgets: Mapping[str, float] | None = None,
    ) -> None:
        if not kinds:
            raise ValueError("kinds must name at least one feature")
        if int(reference_size) != reference_size or reference_size < 100:
            raise ValueError(f"reference_size must be an integer >= 100, got {reference_size}")
        if false_alarms_per_100k <= 0:
            raise ValueError(f"false_alarms_per_100k must be > 0, got {false_alarms_per_100k}")
        if not shifts or any(not 0 < k <= 5 for k in shifts):
            raise ValueError(f"shifts must be reference SDs in (0, 5], got {shifts}")
        if not odds_ratios or any(r <= 1 for r in odds_ratios):
            raise ValueError(f"odds_ratios must be > 1, got {odds_ratios}")
        bad = [f for f in joint or () if kinds.get(f) != "numeric"]
        if bad:
            raise ValueError(f"joint must name numeric features of kinds, got {bad}")
        self.budgets = _checked_budgets(budgets or {}, kinds, false_alarms_per_100k)
        self.kinds: dict[str, Kind] = dict(kinds)
        self.reference_size = int(reference_size)
        self.false_alarms_per_100k = float(false_alarms_per_100k)
        self.shifts = tuple(float(k) for k in shifts)
        self.odds_ratios = tuple(float(r) for r in odds_ratios)
        self.min_share = float(min_share)
        self.joint = list(joint) if joint is not None and len(joint) >= 2 else []
        self.rearm_window = int(rearm_window)
        self.rearm_level = float(rearm_level)
        self.keep_rows = max(int(keep_rows), self.rearm_window)
        self.rows_seen = 0
        self.live_from = self.reference_size  # the first monitored row (0 once primed)
        self.reference: dict[str, np.ndarray] | None = None  # the reference rows, once complete
        self._ref: dict[str, list[np.ndarray]] | None = {f: [] for f in self.kinds}
        self._recent: list[tuple[int, dict[str, np.ndarray]]] = []  # (first row, columns) per batch
        self.streams: list[Stream] = []
        self.firing: dict[str, int] = {}  # stream -> row of its next re-arm check
        self._bank: CusumBank | None = None
        self._numeric: NumericLayout | None = None  # made on first use

    @property
    def reference_ready(self) -> bool:
        return self._ref is None

    def prime(self, columns: Mapping[str, Any]) -> None:
        """Take ``columns`` (every feature's column, at least 100 rows) as the reference, before the
        first update: the stream is then monitored from its first row.

        >>> rng = np.random.default_rng(5)
        >>> det = SequentialFeatureDrift({"age": "numeric"}, reference_size=2000)
        >>> det.prime({"age": rng.normal(40, 10, 3000)})  # e.g. the training set
        >>> [(d.feature, d.row, d.direction) for d in det.update({"age": rng.normal(47, 10, 500)})]
        [('age', 53, 'increase')]
        """
        if self.rows_seen or self._ref is None:
            raise ValueError("prime the reference before the first update")
        cols = self._columns(columns)
        n = len(next(iter(cols.values())))
        if n < 100:
            raise ValueError(f"a reference needs at least 100 rows, got {n}")
        self._ref = {f: [a] for f, a in cols.items()}
        self.live_from = 0
        self._build()

    def _columns(self, columns: Mapping[str, Any]) -> dict[str, np.ndarray]:
        return {
            f: np.asarray(columns[f], dtype=float if k == "numeric" else object).ravel()
            for f, k in self.kinds.items()
        }

    def update(self, columns: Mapping[str, Any]) -> list[SequentialDrift]:
        """Feed a batch of rows (every feature's column); returns the alarms it raised, in row order."""
        cols = self._columns(columns)
        n = len(next(iter(cols.values())))
        pos = 0
        if self._ref is not None:
            pos = min(n, self.reference_size - self.rows_seen)
            for f, a in cols.items():
                self._ref[f].append(a[:pos])
            self.rows_seen += pos
            if self.rows_seen == self.reference_size:
                self._build()
        if pos >= n:
            return []
        rest = {f: a[pos:] for f, a in cols.items()}
        first = self.rows_seen
        self._remember(first, rest)
        self.rows_seen += n - pos
        return self._monitor(rest, first)

    # -- reference ----------------------------------------------------------------------------------
    def _build(self) -> None:
        assert self._ref is not None
        ref = {f: np.concatenate(parts) for f, parts in self._ref.items()}
        self._ref = None
        self.reference = ref
        streams: list[Stream] = []
        for f, kind in self.kinds.items():
            if kind == "numeric":
                numeric = NumericScores(ref[f])
                if numeric.n >= 10:
                    streams.append(numeric_stream(f, numeric, ref[f], self.shifts))
            else:
                shares = CategoryShares(ref[f], self.min_share)
                if shares.n >= 10:
                    streams.append(categorical_stream(f, shares, ref[f], self.odds_ratios))
        if self.joint:
            parts = [s for s in streams if s.name in self.joint]
            if len(parts) >= 2:
                joint = np.column_stack([s.transform(ref, {}) for s in parts])
                recon = Reconstruction([s.name for s in parts], joint)
                streams.append(Stream.joint(recon, self.shifts, parts))
        own = {s.name: self.budgets[s.name] for s in streams if s.name in self.budgets}
        rest = arl_from_budget(self.false_alarms_per_100k - sum(own.values()))
        share = rest * (len(streams) - len(own))  # ARL0 of each stream without a budget of its own
        for s in streams:
            s.calibrate(arl_from_budget(own[s.name]) if s.name in own else share)
        self.streams = streams
        self._bank = CusumBank(np.concatenate([s.thresholds for s in streams]))
        self._numeric = None
        self._cols = np.cumsum([0] + [s.thresholds.size for s in streams])

    def levels(self) -> dict[str, float]:
        """Each monitored stream's CUSUM now, as a fraction of its alarm threshold (its largest
        statistic's; 1.0 alarms): how close each feature is to a drift alert, between alerts too.
        Empty until the reference is complete."""
        if self._bank is None:
            return {}
        level = self._bank.levels()
        return {
            s.name: float(level[self._cols[i] : self._cols[i + 1]].max()) for i, s in enumerate(self.streams)
        }

    # -- monitoring ---------------------------------------------------------------------------------
    def _increments(self, cols: Mapping[str, np.ndarray]) -> np.ndarray:
        """(rows x bank columns): the numeric streams' in one block, the others' stream by stream."""
        z: dict[str, np.ndarray] = {}  # numeric scores, computed once for the joint stream too
        if self._numeric is None:
            self._numeric = _numeric_block(self.streams, self._cols)
        block, columns, names, in_block = self._numeric
        n = len(next(iter(cols.values())))
        inc = np.empty((n, int(self._cols[-1])))
        if names:
            scores, inc[:, columns] = block(np.column_stack([cols[f] for f in names]))
            z.update(zip(names, scores.T, strict=True))
        for i, s in enumerate(self.streams):
            if i not in in_block:
                inc[:, self._cols[i] : self._cols[i + 1]] = s.increments(cols, z)
        return inc

    def _monitor(self, cols: Mapping[str, np.ndarray], first: int) -> list[SequentialDrift]:
        if self._bank is None or not self.streams:
            return []
        inc = self._increments(cols)
        n, pos, out = inc.shape[0], 0, []
        while pos < n:
            checks = [r - first for r in self.firing.values() if r - first <= n]
            end = min(checks, default=n)
            active = np.ones(self._cols[-1], dtype=bool)
            for i, s in enumerate(self.streams):
                if s.name in self.firing:
                    active[self._cols[i] : self._cols[i + 1]] = False
            alarm = self._bank.update(inc[pos:end], first + pos, active) if end > pos else None
            if alarm is not None:
                row = first + pos + alarm.row
                i = int(np.searchsorted(self._cols, alarm.column, "right") - 1)
                found = self._explain(self.streams[i], alarm.column - self._cols[i], row, alarm)
                if found.feature != JOINT or not self.firing.keys() & set(self.joint):
                    out.append(found)  # else a drifting feature's own alarm explains the joint one
                self.firing[self.streams[i].name] = row + 1 + self.rearm_window
                self._bank.reset(np.arange(self._cols[i], self._cols[i + 1]), row + 1)
                pos = pos + alarm.row + 1
                continue
            pos = end
            self._rearm(first + end)
        self._forget()
        return out

    def _rearm(self, row: int) -> None:
        """Streams whose check is due at ``row``: re-armed if the window before it looks like the
        reference, else checked again a window later."""
        assert self._bank is not None
        for i, s in enumerate(self.streams):
            if self.firing.get(s.name) != row:
                continue
            result = window_test(s, self._rows(row - self.rearm_window, row))
            p = 0.0 if result.p_value is None else result.p_value
            if p > self.rearm_level:
                del self.firing[s.name]
                self._bank.reset(np.arange(self._cols[i], self._cols[i + 1]), row)
            else:
                self.firing[s.name] = row + self.rearm_window

    def _explain(self, s: Stream, column: int, row: int, alarm: Any) -> SequentialDrift:
        start = max(alarm.run_start, row + 1 - self.keep_rows, self.live_from)
        cols = self._rows(start, row + 1)
        r, psi, contributors = s.explain(cols)
        return SequentialDrift(
            feature=s.name,
            row=row,
            change_point=int(alarm.run_start),
            statistic="cusum_llr",
            value=alarm.value,
            threshold=alarm.threshold,
            test=r.test,
            test_statistic=r.statistic,
            p_value=r.p_value,
            effect=r.effect,
            direction=s.directions[column] if s.kind == "numeric" or s.kind == "joint" else r.direction,
            category=r.category,
            psi=psi,
            rows=row + 1 - start,
            contributors=tuple(contributors),
        )

    # -- recent rows --------------------------------------------------------------------------------
    def _remember(self, first: int, cols: dict[str, np.ndarray]) -> None:
        self._recent.append((first, cols))

    def _forget(self) -> None:
        keep_from = self.rows_seen - self.keep_rows
        while len(self._recent) > 1 and self._recent[1][0] <= keep_from:
            self._recent.pop(0)

    def _rows(self, start: int, end: int) -> dict[str, np.ndarray]:
        """Rows ``[start, end)`` of every feature (from what is remembered)."""
        parts: dict[str, list[np.ndarray]] = {f: [] for f in self.kinds}
        for first, cols in self._recent:
            lo, hi = max(start - first, 0), min(end - first, len(next(iter(cols.values()))))
            if lo < hi:
                for f, a in cols.items():
                    parts[f].append(a[lo:hi])
        return {f: np.concatenate(p) if p else np.empty(0) for f, p in parts.items()}

    def __getstate__(self) -> dict[str, Any]:
        """Without the numeric block (rebuilt on use); the last ``keep_rows`` rows in one chunk."""
        state = {k: v for k, v in self.__dict__.items() if k != "_numeric"}
        start = max(self._recent[0][0], self.rows_seen - self.keep_rows) if self._recent else 0
        state["_recent"] = [(start, self._rows(start, self.rows_seen))] if self._recent else []
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Checkpoints from before priming and budgets: the reference was the first rows."""
        state.setdefault("live_from", state["reference_size"])
        state.setdefault("reference", None)
        state.setdefault("budgets", {})
        state["_numeric"] = None
        self.__dict__.update(state)

    def __repr__(self) -> str:
        return (
            f"SequentialFeatureDrift({len(self.kinds)} features, reference_size={self.reference_size}, "
            f"false_alarms_per_100k={self.false_alarms_per_100k}, shifts={self.shifts}, "
            f"odds_ratios={self.odds_ratios}, joint={len(self.joint)} features)"
        )


def _checked_budgets(
    budgets: Mapping[str, float], kinds: Mapping[str, Kind], total: float
) -> dict[str, float]:
    """Features' own budgets: of known features, positive, together less than the model's ``total``
    (the rest is split over the other streams)."""
    unknown = sorted(set(budgets) - set(kinds))
    if unknown:
        raise ValueError(f"budgets name unknown features {unknown}; features: {sorted(kinds)}")
    if any(b <= 0 for b in budgets.values()):
        raise ValueError(f"budgets must be > 0 false alarms per 100k, got {dict(budgets)}")
    if budgets and sum(budgets.values()) >= total:
        raise ValueError(
            f"the features' own budgets add up to {sum(budgets.values()):g} false alarms per 100k, "
            f"not less than the model's false_alarms_per_100k={total:g}: lower them or raise the model's"
        )
    return {f: float(b) for f, b in budgets.items()}


def _numeric_block(streams: Sequence[Stream], bounds: np.ndarray) -> NumericLayout:
    """The numeric streams (of one design: all of them, as the detector makes them) as one
    :class:`NumericBlock`, the bank columns it fills (stream by stream, as the bank lays them out),
    its features, and the streams' positions."""
    numeric = [(i, s) for i, s in enumerate(streams) if s.kind == "numeric" and s.numeric is not None]
    if numeric:
        first = numeric[0][1]
        numeric = [
            (i, s)
            for i, s in numeric
            if np.array_equal(s.slopes, first.slopes) and np.array_equal(s.drifts, first.drifts)
        ]
    slopes, drifts = (numeric[0][1].slopes, numeric[0][1].drifts) if numeric else (np.empty(0), np.empty(0))
    block = NumericBlock([s.numeric for _, s in numeric if s.numeric is not None], slopes, drifts)
    columns = [np.arange(bounds[i], bounds[i + 1]) for i, _ in numeric]
    flat = np.concatenate(columns) if columns else np.empty(0, dtype=np.int64)
    cols: np.ndarray | slice = flat
    if columns and np.array_equal(flat, np.arange(flat[0], flat[-1] + 1)):
        cols = slice(int(flat[0]), int(flat[-1]) + 1)  # the usual layout: a slice is written in place
    return block, cols, [s.name for _, s in numeric], {i for i, _ in numeric}
