"""Windowed multi-feature data-drift detection for one model version, within a false-alarm budget."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ._util import count_categories
from .calibration import DEFAULT_FALSE_ALARMS_PER_100K, alpha_from_budget, holm
from .exceptions import DetectorError
from .psi import PSITest
from .psi_categorical import CategoricalPSITest
from .registry import _TESTS, get_test

__all__ = ["FeatureDrift", "FeatureSetDrift"]

Kind = Literal["numeric", "categorical"]


@dataclass(frozen=True, slots=True)
class FeatureDrift:
    """One feature flagged in one window: ``p_value <= threshold`` (the feature's Holm level, a
    share of the model's per-window budget). ``effect``/``direction``/``category`` say what moved
    (numeric: mean shift in reference standard deviations; categorical: share change of
    ``category``); ``psi`` is the PSI of the same window for a familiar magnitude. ``window_start``
    and ``window_end`` are 0-based row indices in the update stream (end exclusive)."""

    feature: str
    test: str
    statistic: float
    p_value: float | None
    threshold: float
    effect: float
    direction: str
    category: str | None
    psi: float
    window_start: int
    window_end: int
    reference_rows: int
    rows: int = 0


def _make_test(name: str, kind: Kind, seed: int) -> Any:
    cls = _TESTS.get(name)
    if cls is not None and cls.kind != kind:
        raise ValueError(
            f"{kind}_test must be a {kind} test, got {name!r} ({cls.kind}); "
            f"valid: {sorted(n for n, c in _TESTS.items() if c.kind == kind)}"
        )
    if cls is not None and "seed" in inspect.signature(cls).parameters:
        return get_test(name, seed=seed)
    return get_test(name)


class FeatureSetDrift:
    """Data drift of all features of one model version, on tumbling windows, within a budget.

    The first ``reference_size`` rows form the reference. Every following complete window of
    ``window_size`` rows is tested feature by feature against it; the per-window family-wise level
    ``alpha = false_alarms_per_100k * window_size / 100_000`` is shared across features by Holm's
    procedure, so the budget holds per model, not per test (see :mod:`detectors.calibration`).
    ``min_effect`` (optional) additionally requires ``|effect| >= min_effect`` (practical
    significance: mean shift in reference SDs, or share change). Missing values (NaN/None) are left
    out of both windows; a feature whose reference is (almost) all missing is left out of the tests and
    listed in ``skipped``. Pure and picklable: the state is arrays and counters.

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> det = FeatureSetDrift({"age": "numeric", "plan": "categorical"})
    >>> def rows(n, shift):
    ...     return {"age": rng.normal(40 + 10 * shift, 10, n),
    ...             "plan": rng.choice(["free", "pro"], n, p=[0.7, 0.3]).astype(object)}
    >>> det.update(rows(5000, 0.0))
    []
    >>> [(d.feature, d.direction, round(d.effect, 2), d.window_start) for d in det.update(rows(1000, 0.25))]
    [('age', 'increase', 0.25, 5000)]
    >>> det.rows_seen, det.windows_tested, det.last_window
    (6000, 4, (5000, 6000))
    """

    def __init__(
        self,
        kinds: Mapping[str, Kind],
        *,
        reference_size: int = 2000,
        window_size: int = 1000,
        false_alarms_per_100k: float = DEFAULT_FALSE_ALARMS_PER_100K,
        numeric_test: str = "ks",
        categorical_test: str = "chi2",
        min_effect: float | None = None,
        seed: int = 0,
    ) -> None:
        if not kinds:
            raise ValueError("kinds must name at least one feature")
        bad = {f: k for f, k in kinds.items() if k not in ("numeric", "categorical")}
        if bad:
            raise ValueError(f"kinds values must be 'numeric' or 'categorical', got {bad}")
        if int(reference_size) != reference_size or reference_size < 10:
            raise ValueError(f"reference_size must be an integer >= 10, got {reference_size}")
        if int(window_size) != window_size or window_size < 10:
            raise ValueError(f"window_size must be an integer >= 10, got {window_size}")
        if min_effect is not None and min_effect < 0:
            raise ValueError(f"min_effect must be >= 0 or None, got {min_effect}")
        self.kinds: dict[str, Kind] = dict(kinds)
        self.reference_size = int(reference_size)
        self.window_size = int(window_size)
        self.false_alarms_per_100k = float(false_alarms_per_100k)
        self.alpha = alpha_from_budget(self.false_alarms_per_100k, self.window_size)
        self.numeric_test = numeric_test
        self.categorical_test = categorical_test
        self.min_effect = min_effect
        self.seed = int(seed)
        self._tests = {
            "numeric": _make_test(numeric_test, "numeric", self.seed),
            "categorical": _make_test(categorical_test, "categorical", self.seed),
        }
        self._reset()

    def _reset(self) -> None:
        self._rows_seen = 0
        self._ref_parts: dict[str, list[np.ndarray]] | None = {f: [] for f in self.kinds}
        self._ref_rows = 0
        self._prepared: dict[str, Any] = {}
        self._psi: dict[str, Any] = {}
        self._win_parts: dict[str, list[np.ndarray]] = {f: [] for f in self.kinds}
        self._win_rows = 0
        self.windows_tested = 0
        self.skipped: dict[str, str] = {}  # features left out (empty reference) -> why

    def reset(self) -> None:
        """Forget the reference and all windows."""
        self._reset()

    @property
    def rows_seen(self) -> int:
        """Rows fed so far (reference included)."""
        return self._rows_seen

    @property
    def reference_ready(self) -> bool:
        return self._ref_parts is None

    def window_bounds(self, k: int) -> tuple[int, int]:
        """Rows ``[start, end)`` of the ``k``-th tumbling window after the reference (0-based)."""
        start = self.reference_size + k * self.window_size
        return start, start + self.window_size

    @property
    def last_window(self) -> tuple[int, int] | None:
        """Rows ``[start, end)`` of the latest window tested, or None before the first."""
        return self.window_bounds(self.windows_tested - 1) if self.windows_tested else None

    def _columns(self, columns: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], int]:
        missing = [f for f in self.kinds if f not in columns]
        if missing:
            raise DetectorError(
                f"update() is missing columns {missing}; expected all of {sorted(self.kinds)}"
            )
        out: dict[str, np.ndarray] = {}
        for f, kind in self.kinds.items():
            try:
                out[f] = np.asarray(columns[f], dtype=float if kind == "numeric" else object).ravel()
            except (TypeError, ValueError) as exc:
                raise DetectorError(
                    f"column {f!r} is declared {kind} but holds values numpy cannot read as "
                    f"{'floats' if kind == 'numeric' else 'objects'} ({exc}); fix the column "
                    "or declare it categorical"
                ) from None
        lengths = {a.size for a in out.values()}
        if len(lengths) != 1:
            sizes = {f: a.size for f, a in out.items()}
            raise DetectorError(f"update() columns must have equal lengths, got {sizes}")
        return out, lengths.pop()

    def update(self, columns: Mapping[str, Any]) -> list[FeatureDrift]:
        """Feed a batch of rows; returns the features flagged in each window completed by it."""
        cols, n = self._columns(columns)
        found: list[FeatureDrift] = []
        pos = 0
        while pos < n:
            if self._ref_parts is not None:
                take = min(n - pos, self.reference_size - self._ref_rows)
                for f, a in cols.items():
                    self._ref_parts[f].append(a[pos : pos + take])
                self._ref_rows += take
                if self._ref_rows == self.reference_size:
                    self._build_reference()
            else:
                take = min(n - pos, self.window_size - self._win_rows)
                for f, a in cols.items():
                    self._win_parts[f].append(a[pos : pos + take])
                self._win_rows += take
                if self._win_rows == self.window_size:
                    found.extend(self._test_window(*self.window_bounds(self.windows_tested)))
            pos += take
            self._rows_seen += take
        return found

    def _build_reference(self) -> None:
        assert self._ref_parts is not None
        for f, parts in self._ref_parts.items():
            ref = np.concatenate(parts)
            kind = self.kinds[f]
            present = int(np.isfinite(ref).sum()) if kind == "numeric" else len(count_categories(ref))
            if present < (10 if kind == "numeric" else 1):
                self.skipped[f] = (
                    f"reference holds {present} non-missing values"
                    if kind == "numeric"
                    else "reference holds no category"
                )
                continue
            if kind == "numeric":
                self._prepared[f] = self._tests[kind].prepare(ref, self.window_size)
                self._psi[f] = PSITest().prepare(ref)
            else:
                self._prepared[f] = self._tests[kind].prepare(ref, self.window_size)
                self._psi[f] = CategoricalPSITest().prepare(ref)
        self._ref_parts = None

    def _test_window(self, start: int, end: int) -> list[FeatureDrift]:
        parts, self._win_parts = self._win_parts, {f: [] for f in self.kinds}
        feats = [f for f in self.kinds if f not in self.skipped]
        results, windows, counters = [], {}, {}
        for f in feats:
            w = np.concatenate(parts[f]) if len(parts[f]) > 1 else parts[f][0]
            prepared = self._prepared[f]
            if self.kinds[f] == "categorical" and hasattr(prepared, "test_counts"):
                counters[f] = count_categories(w)
                results.append(prepared.test_counts(counters[f]))
            else:
                results.append(prepared(w))
            windows[f] = w
        self._win_rows = 0
        self.windows_tested += 1
        if not feats:
            return []
        p = np.array([1.0 if r.p_value is None else r.p_value for r in results])
        rejected, levels = holm(p, self.alpha)
        out: list[FeatureDrift] = []
        for i in np.flatnonzero(rejected):
            f, r = feats[i], results[i]
            if self.min_effect is not None and abs(r.effect) < self.min_effect:
                continue
            psi_prep = self._psi[f]
            psi = psi_prep.test_counts(counters[f]) if f in counters else psi_prep(windows[f])
            rows = sum(counters[f].values()) if f in counters else int(np.isfinite(windows[f]).sum())
            out.append(
                FeatureDrift(
                    feature=f,
                    test=r.test,
                    statistic=r.statistic,
                    p_value=r.p_value,
                    threshold=float(levels[i]),
                    effect=r.effect,
                    direction=r.direction,
                    category=r.category,
                    psi=psi.statistic,
                    window_start=start,
                    window_end=end,
                    reference_rows=self.reference_size,
                    rows=rows,
                )
            )
        return out

    def __repr__(self) -> str:
        return (
            f"FeatureSetDrift({len(self.kinds)} features, reference_size={self.reference_size}, "
            f"window_size={self.window_size}, false_alarms_per_100k={self.false_alarms_per_100k}, "
            f"numeric_test={self.numeric_test!r}, categorical_test={self.categorical_test!r})"
        )
