"""The detection benchmark's runners: one detector on one seeded stream (sequential, a bank of them, or
windowed), fixed per-feature thresholds, and the summary row of a scenario x detector."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from detectors import FeatureSetDrift, TestResult, get_detector, get_test
from detectors.wasserstein import wasserstein_sorted

# false alarms per 100k events per model: the budget every budgeted Driftline row of the benchmark runs
# at (passed explicitly: the published figures must not follow the detectors' default budget)
BUDGET = 0.5

Kind = Literal["numeric", "categorical"]


@dataclass
class Row:
    scenario: str
    detector: str
    recommended: bool
    mean_delay: float | None
    miss_rate: float | None
    false_alarms_per_100k: float
    us_per_update: float
    seeds: int
    events: int
    power: float | None = None


@dataclass
class Run:  # one detector on one seeded stream; first: 0-based position of the first alarm after the change
    first: int | None
    false_alarms: int
    pre_events: int
    updates: int
    seconds: float


def river_factory(name: str) -> Callable[[], Any]:
    from river import drift
    from river.drift import binary

    factories: dict[str, Callable[[], Any]] = {
        "ADWIN": drift.ADWIN,
        "PageHinkley": drift.PageHinkley,
        "KSWIN": lambda: drift.KSWIN(seed=0),
        "DDM": binary.DDM,
        "EDDM": binary.EDDM,
        "HDDM_A": binary.HDDMA,
        "HDDM_W": binary.HDDMW,
        "FHDDM": binary.FHDDM,
    }
    return factories[name]


def _value(v: str) -> float | str | None:
    try:
        return None if v == "None" else float(v)
    except ValueError:
        return v


def run_sequential(label: str, xs: np.ndarray, change: int, limit: int | None = None) -> Run:
    """Feed ``xs`` to a fresh detector named by ``label`` ("river:NAME ..." or "driftline:NAME k=v ...");
    stop at the first alarm at or after ``change``."""
    vals = xs[:limit].tolist() if limit else xs.tolist()
    family, _, rest = label.partition(":")
    name, *params = rest.split()
    step: Callable[[float], bool]
    if family == "river":
        river = river_factory(name)()
        if name == "FHDDM":  # river's FHDDM alarms on a *drop* of its input: feed it 1 - error
            vals = [1.0 - v for v in vals]

        def river_step(v: float, det: Any = river, upd: Callable[[float], Any] = river.update) -> bool:
            upd(v)
            return det.drift_detected  # type: ignore[no-any-return]

        step = river_step
    else:
        det = get_detector(name, **{k: _value(v) for k, v in (p.split("=") for p in params if "=" in p)})

        def driftline_step(v: float, upd: Callable[[float], object] = det.update) -> bool:
            return upd(v) is not None

        step = driftline_step

    t = time.perf_counter()
    fa, first, i = 0, None, 0
    for i, v in enumerate(vals):  # noqa: B007
        if step(v):
            if i < change:
                fa += 1
            else:
                first = i
                break
    return Run(first, fa, min(change, len(vals)), i + 1, time.perf_counter() - t)


def run_bank(label: str, columns: list[np.ndarray], change: int) -> Run:
    """A bank of detectors, one per column; the model alarms when any of them does."""
    bank = [run_sequential(label, x, change) for x in columns]
    firsts = [r.first for r in bank if r.first is not None]
    return Run(
        min(firsts) if firsts else None,
        sum(r.false_alarms for r in bank),
        bank[0].pre_events,
        bank[0].updates,
        sum(r.seconds for r in bank),
    )


def run_windowed(
    columns: dict[str, np.ndarray],
    kinds: dict[str, Kind],
    change: int,
    window: int = 1000,
    flag: str | None = None,
) -> tuple[Run, list[bool]]:
    """FeatureSetDrift (recommended tests: KS / chi-square) over all rows; an alarm is known at the end of
    the window that raised it. Also returns, per fully post-change window, whether ``flag`` was flagged."""
    det = FeatureSetDrift(kinds, window_size=window, false_alarms_per_100k=BUDGET)
    n = len(next(iter(columns.values())))
    t = time.perf_counter()
    found = det.update(columns)
    dt = time.perf_counter() - t
    ends = sorted({d.window_end for d in found})
    post = [e - 1 for e in ends if e > change]
    flagged = {d.window_end for d in found if d.feature == flag}
    first_full = det.reference_size + -(-max(change - det.reference_size, 0) // window) * window
    windows = [e in flagged for e in range(first_full + window, n + 1, window)]
    return Run(post[0] if post else None, sum(e <= change for e in ends), change, n, dt), windows


def summarise(
    scenario: str,
    label: str,
    runs: list[Run],
    recommended: bool,
    has_change: bool,
    power: list[bool] | None = None,
) -> Row:
    delays = [r.first - r.pre_events + 1 for r in runs if r.first is not None]
    pre = sum(r.pre_events for r in runs)
    return Row(
        scenario,
        label,
        recommended,
        float(np.mean(delays)) if has_change and delays else None,
        (1 - len(delays) / len(runs)) if has_change else None,
        1e5 * sum(r.false_alarms for r in runs) / max(pre, 1),
        1e6 * sum(r.seconds for r in runs) / max(sum(r.updates for r in runs), 1),
        len(runs),
        sum(r.updates for r in runs),
        float(np.mean(power)) if power else None,
    )


def _distance(ref: np.ndarray) -> Callable[[np.ndarray], float]:
    """Normalised Wasserstein distance of a window to the sorted reference ``ref``."""
    return lambda w: wasserstein_sorted(ref, np.sort(w)) / max(ref.std(), 1e-3)


def _score(test: Callable[[np.ndarray], TestResult], by_p_value: bool) -> Callable[[np.ndarray], float]:
    """A prepared test's statistic, or its p-value negated (larger = more drift either way)."""

    def negated_p_value(w: np.ndarray) -> float:
        p = test(w).p_value
        assert p is not None, "fixed p-value thresholds need a test with a p-value"
        return -p

    return negated_p_value if by_p_value else lambda w: test(w).statistic


def fixed_threshold_model(
    cols: dict[str, np.ndarray], kinds: dict[str, Kind], rule: str, ref: int = 2000, window: int = 1000
) -> Run:
    """Per-feature fixed thresholds: evidently's defaults for windows <= 1000 rows (KS / chi-square
    p < 0.05), or the folklore cuts PSI > 0.1 and normalised Wasserstein > 0.1 (Jensen-Shannon > 0.1 for
    categorical features). A window is a model alarm if any feature crosses. No drift here."""
    numeric, categorical = {
        "p<0.05": ("ks", "chi2"),
        "psi>0.1": ("psi", "psi_categorical"),
        "wasserstein>0.1": ("wasserstein", "jensen_shannon"),
    }[rule]
    n = len(next(iter(cols.values())))
    t = time.perf_counter()
    value: dict[str, Callable[[np.ndarray], float]] = {}
    for f, k in kinds.items():
        name = numeric if k == "numeric" else categorical
        if name == "wasserstein":  # only the distance is needed: skip the bootstrap null
            value[f] = _distance(np.sort(cols[f][:ref]))
        else:
            value[f] = _score(get_test(name).prepare(cols[f][:ref], window), rule == "p<0.05")
    cut = -0.05 if rule == "p<0.05" else 0.1
    starts = range(ref, n - window + 1, window)
    alarms = sum(any(value[f](cols[f][s : s + window]) > cut for f in kinds) for s in starts)
    return Run(None, alarms, n, n, time.perf_counter() - t)
