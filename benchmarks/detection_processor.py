"""Processor-level detection scenarios: seeded streams of a 7-feature model (5 numeric -- one skewed,
one pair correlated 0.8 -- and 2 more numeric, one categorical, the prediction score) through the
processor core's feature-drift monitor (:class:`stream_processors.core.feature_drift.FeatureDriftMonitor`,
default :class:`~driftline.config.MonitorSettings`, batches of 1,000 rows as a consumer reads them).

    python benchmarks/detection.py --processor [--seeds 20] [--quick] [--json]

Per scenario: mean / median / p90 delay (rows after the change, detected runs), misses (no alert within
the post-change rows), false alarms per 100k rows per model (alerts before the change; the no-drift
controls are the measurement: 5 x 1M rows), and the share of first alerts after the change that name the
right feature (the correlation change: a multivariate_drift alert). Beside it in the same run, on the
same streams: river's ADWIN with default parameters fed the raw drifted feature (numeric shifts), and an
Evidently-style trailing-window test (every 100 rows, the last 1,000 rows against the reference, KS /
chi-square p < 0.05 per feature, Evidently's default).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from driftline.config import MonitorSettings
from stream_processors.core.feature_drift import FeatureDriftMonitor
from stream_processors.core.schema import SCORE_COLUMN, Kind

__all__ = ["ProcessorRow", "run_processor_scenarios"]

NUMERIC = [f"x{i}" for i in range(7)]
KINDS: dict[str, Kind] = {**{f: "numeric" for f in NUMERIC}, "plan": "categorical"}
PLANS = np.array(["a", "b", "c", "d", "e"], dtype=object)
P_PLAN = np.array([0.2, 0.3, 0.25, 0.15, 0.1])
REF = 2000  # MonitorSettings().reference_size


@dataclass
class ProcessorRow:
    scenario: str
    detector: str
    mean_delay: float | None
    median_delay: float | None
    p90_delay: float | None
    miss_rate: float | None
    false_alarms_per_100k: float
    right_feature: float | None
    within_3000: float | None
    seeds: int
    rows: int


@dataclass
class Scenario:
    name: str
    feature: str | None  # what moves (None: nothing; "(joint)": the correlation of x0 and x1)
    shift: float = 0.0  # in the feature's reference SDs
    ramp: int = 0  # rows over which the shift grows (0: abrupt)
    rho_after: float = 0.8
    plan_after: np.ndarray | None = None


def make_stream(
    rng: np.random.Generator, n: int, change: int, sc: Scenario, target: str
) -> dict[str, np.ndarray]:
    """``n`` rows; the change (if any) at row ``change`` on ``target``."""
    x = rng.normal(0, 1, (n, 7))
    rho = np.full(n, 0.8)
    rho[change:] = sc.rho_after
    x[:, 1] = rho * x[:, 0] + np.sqrt(1 - rho**2) * x[:, 1]
    x[:, 2] = rng.gamma(2.0, 1.0, n)  # skewed; SD sqrt(2)
    sd = {f: (np.sqrt(2.0) if f == "x2" else 1.0) for f in NUMERIC}
    if sc.shift and target in sd:
        ramp = np.clip((np.arange(n) - change + 1) / max(sc.ramp, 1), 0, 1)
        x[:, NUMERIC.index(target)] += sc.shift * sd[target] * ramp
    cols = {f: x[:, i] for i, f in enumerate(NUMERIC)}
    plan = rng.choice(PLANS, n, p=P_PLAN)
    if sc.plan_after is not None:
        plan[change:] = rng.choice(PLANS, n - change, p=sc.plan_after)
    cols["plan"] = plan
    cols[SCORE_COLUMN] = 1 / (1 + np.exp(-(0.5 * x[:, 0] - 0.3 * x[:, 3] + rng.normal(0, 0.5, n))))
    return cols


def driftline_alerts(cols: dict[str, np.ndarray], batch: int = 1000) -> list[tuple[int, str]]:
    """(row, what) of every alert of the core's monitor: a feature, "score" or "(joint)"."""
    monitor = FeatureDriftMonitor("m", "1", KINDS, MonitorSettings())
    n = len(cols["x0"])
    out = []
    for a in range(0, n, batch):
        b = min(n, a + batch)
        idx = np.arange(a, b)
        for al in monitor.update({k: v[a:b] for k, v in cols.items()}, idx, idx.astype(float)):
            what = {"prediction_drift": "score", "multivariate_drift": "(joint)"}.get(
                al.type, al.feature or ""
            )
            out.append((al.detected_at_index, what))
    return out


def adwin_alerts(x: np.ndarray, start: int = 0) -> list[tuple[int, str]]:
    from river import drift

    det, out = drift.ADWIN(), []
    for i, v in enumerate(x[start:].tolist(), start):
        det.update(v)
        if det.drift_detected:
            out.append((i, "raw"))
    return out


def trailing_alerts(
    cols: dict[str, np.ndarray], step: int = 100, window: int = 1000
) -> list[tuple[int, str]]:
    ref = {f: v[:REF] for f, v in cols.items()}
    cats = {f: (np.unique(ref[f].astype(str))) for f in KINDS if KINDS[f] == "categorical"}
    n, out = len(cols["x0"]), []
    for end in range(REF + window, n + 1, step):
        for f, kind in KINDS.items():
            cur = cols[f][end - window : end]
            if kind == "numeric":
                p = stats.ks_2samp(ref[f], cur).pvalue
            else:
                r = np.array([(ref[f] == c).sum() for c in cats[f]])
                c = np.array([(cur == k).sum() for k in cats[f]])
                p = stats.chi2_contingency(np.vstack([r, c]) + 0.5)[1]
            if p < 0.05:
                out.append((end - 1, f))
    return out


SCENARIOS = [
    *(Scenario(f"abrupt +{s}sd", "x", shift=s) for s in (0.25, 0.5, 0.7)),
    *(Scenario(f"gradual +{s}sd over 2k", "x", shift=s, ramp=2000) for s in (0.25, 0.5, 0.7)),
    Scenario("category share 0.2->0.3", "plan", plan_after=np.array([0.3, 0.275, 0.225, 0.125, 0.075])),
    Scenario("correlation 0.8->0 (marginals same)", "(joint)", rho_after=0.0),
    Scenario("concept change (features same)", None),
]


def _summarise(
    name: str, det: str, runs: Sequence[tuple[int | None, bool | None, int, int]], rows: int
) -> ProcessorRow:
    """``runs``: (delay or None, right feature named or None, false alarms, pre-change rows)."""
    delays = np.array([d for d, _, _, _ in runs if d is not None], dtype=float)
    named = [r for d, r, _, _ in runs if d is not None and r is not None]
    fa = sum(f for _, _, f, _ in runs) / max(sum(p for _, _, _, p in runs), 1) * 100_000
    has_change = name not in ("no drift",) and not name.startswith("concept")
    return ProcessorRow(
        scenario=name,
        detector=det,
        mean_delay=float(delays.mean()) if delays.size else None,
        median_delay=float(np.median(delays)) if delays.size else None,
        p90_delay=float(np.percentile(delays, 90)) if delays.size else None,
        miss_rate=1 - delays.size / len(runs) if has_change else None,
        false_alarms_per_100k=fa,
        right_feature=float(np.mean(named)) if named else None,
        within_3000=float(np.mean([d is not None and d <= 3000 for d, _, _, _ in runs]))
        if has_change
        else None,
        seeds=len(runs),
        rows=rows,
    )


def _score(alerts: list[tuple[int, str]], change: int, post: int, target: str | None, any_name: bool = False):
    before = sum(1 for r, _ in alerts if r < change)
    after = [(r, w) for r, w in alerts if change <= r < change + post]
    if target is None or not after:
        return None, None, before + (len(after) if target is None else 0)
    r, w = after[0]
    return r - change, (True if any_name else w == target), before


def run_processor_scenarios(seeds: int, quick: bool, log: Callable[[str], None]) -> list[ProcessorRow]:
    post = 4000
    out: list[ProcessorRow] = []
    for sc in SCENARIOS:
        res: dict[str, list] = {
            "driftline": [],
            "river ADWIN (raw feature)": [],
            "trailing KS/chi2 p<0.05": [],
        }
        total = 0
        for seed in range(seeds):
            rng = np.random.default_rng(1000 + seed)
            change = REF + int(rng.integers(500, 5000))
            target = f"x{int(rng.integers(0, 7))}" if sc.feature == "x" else sc.feature
            cols = make_stream(rng, change + post, change, sc, target or "")
            total += change + post
            d, named, fa = _score(driftline_alerts(cols), change, post, target)
            res["driftline"].append((d, named, fa, change))
            if sc.feature == "x" and target is not None:
                d, _, fa = _score(adwin_alerts(cols[target]), change, post, target, any_name=True)
                res["river ADWIN (raw feature)"].append((d, None, fa, change))
            if not quick or seed < 3:
                d, named, fa = _score(trailing_alerts(cols), change, post, target)
                res["trailing KS/chi2 p<0.05"].append((d, named, fa, change - REF))
        out += [_summarise(sc.name, k, v, total) for k, v in res.items() if v]
        log(f"processor scenario {sc.name}: done")
    out += _controls(seeds, quick, log)
    return out


def _controls(seeds: int, quick: bool, log: Callable[[str], None]) -> list[ProcessorRow]:
    n = 50_000 if quick else 1_000_000
    runs, adwin = [], []
    for seed in range(min(seeds, 5)):
        rng = np.random.default_rng(5000 + seed)
        cols = make_stream(rng, n, n, Scenario("no drift", None), "")
        alerts = driftline_alerts(cols, batch=5000)
        runs.append((None, None, len(alerts), n - REF))
        a = adwin_alerts(cols["x0"][: min(n, 200_000)])
        adwin.append((None, None, len(a), min(n, 200_000)))
        log(f"no-drift control {seed}: {len(alerts)} alerts in {n} rows")
    return [
        _summarise("no drift", "driftline", runs, n * len(runs)),
        _summarise("no drift", "river ADWIN (raw feature, one feature)", adwin, 200_000 * len(adwin)),
    ]


def format_processor_table(rows: list[ProcessorRow]) -> str:
    head = (
        f"{'scenario':<36} {'detector':<38} {'mean':>6} {'median':>6} {'p90':>6} {'miss':>5} "
        f"{'FA/100k':>8} {'named':>6} {'<=3k':>5}"
    )
    out, last = [head, "-" * len(head)], None

    def f(v: float | None, w: int = 6, p: int = 0) -> str:
        return f"{'-':>{w}}" if v is None else f"{v:{w}.{p}f}"

    for r in rows:
        if last is not None and r.scenario != last:
            out.append("")
        last = r.scenario
        out.append(
            f"{r.scenario:<36} {r.detector:<38} {f(r.mean_delay)} {f(r.median_delay)} {f(r.p90_delay)} "
            f"{f(r.miss_rate, 5, 2)} {r.false_alarms_per_100k:8.2f} {f(r.right_feature, 6, 2)} "
            f"{f(r.within_3000, 5, 2)}"
        )
    return "\n".join(out)
