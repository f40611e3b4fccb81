"""Detection benchmark: Driftline's recommended detectors next to river's defaults (and evidently's
default per-feature thresholds), on the same seeded streams, in one process and one run.

    python benchmarks/detection.py [--json] [--seeds 20] [--quick]

Table: scenario x detector -> mean detection delay (events after the change, detected runs only),
miss rate, false alarms per 100k events (alarms before the change / events before the change; per
model for multi-feature scenarios), microseconds per update (per row for windowed detectors), and for
windowed tests the power (share of fully post-change windows that flag the drifted feature).
Rows marked ``*`` are Driftline's recommended configuration for the scenario. Each detector stops at
its first alarm after the change (only that alarm counts for the delay); river's detectors reset
themselves after an alarm, Driftline's start a new warm-up.

Scaled to fit ~10 minutes on 2 cores (and stated in the table): HDDM_A/HDDM_W run the first 200k
events of the 1M-event stream (~3 us per update); KSWIN (~300 us per update) runs only in the 0.5 sigma
scenario; the river per-feature banks in the 20-feature scenario run the first 50k rows of the numeric
features. Change scenarios hold 20 x 5,500 = 110k pre-change events, so their false-alarm column
resolves ~0.9 per 100k; the no-drift scenarios (20M and 4M events) are the false-alarm measurements.
``--quick`` runs 3 seeds on streams scaled down ~20x.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np

from detectors import FeatureSetDrift, get_detector, get_test
from detectors.wasserstein import wasserstein_sorted

BUDGET = 0.5  # false alarms per 100k events per model


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


def river_factory(name: str) -> Callable[[], object]:
    from river import drift
    from river.drift import binary

    return {
        "ADWIN": drift.ADWIN,
        "PageHinkley": drift.PageHinkley,
        "KSWIN": lambda: drift.KSWIN(seed=0),
        "DDM": binary.DDM,
        "EDDM": binary.EDDM,
        "HDDM_A": binary.HDDMA,
        "HDDM_W": binary.HDDMW,
        "FHDDM": binary.FHDDM,
    }[name]


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
    if family == "river":
        det = river_factory(name)()
        if name == "FHDDM":  # river's FHDDM alarms on a *drop* of its input: feed it 1 - error
            vals = [1.0 - v for v in vals]

        def step(v: float, det=det, upd=det.update) -> bool:
            upd(v)
            return det.drift_detected
    else:
        det = get_detector(name, **{k: _value(v) for k, v in (p.split("=") for p in params if "=" in p)})

        def step(v: float, upd=det.update) -> bool:
            return upd(v) is not None

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
    kinds: dict[str, str],
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


ERROR_DETECTORS = [
    "driftline:bernoulli_cusum",
    "river:ADWIN",
    "river:PageHinkley",
    "river:DDM",
    "river:EDDM",
    "river:HDDM_A",
    "river:HDDM_W",
    "river:FHDDM (fed 1-error)",
]
FEATURE_DETECTORS = ["driftline:gaussian_cusum", "river:ADWIN", "river:PageHinkley"]
CATEGORY_BANK = "driftline:bernoulli_cusum false_alarms_per_100k=0.1 fast_odds_ratio=None"


def error_stream(rng: np.random.Generator, pre: int, post: int, ramp: int = 0) -> np.ndarray:
    p = np.r_[np.full(pre, 0.1), np.linspace(0.1, 0.3, ramp), np.full(post - ramp, 0.3)]
    return (rng.random(p.size) < p).astype(float)


def hoeffding_error_stream(gen: str, seed: int, train: int, pre: int, post: int) -> np.ndarray:
    """A Hoeffding tree trained on ``train`` rows of concept A (not monitored), then monitored while it
    keeps learning (test-then-train) on ``pre`` rows of A and ``post`` rows of concept B."""
    from river import tree
    from river.datasets import synth

    a, b = {
        "SEA": (synth.SEA(variant=0, seed=seed), synth.SEA(variant=3, seed=seed + 1000)),
        "Agrawal": (synth.Agrawal(0, seed=seed), synth.Agrawal(2, seed=seed + 1000)),
        "STAGGER": (synth.STAGGER(0, seed=seed), synth.STAGGER(2, seed=seed + 1000)),
        "Sine": (synth.Sine(0, seed=seed), synth.Sine(1, seed=seed + 1000)),
    }[gen]
    model = tree.HoeffdingTreeClassifier()
    errs = []
    for i, (x, y) in enumerate([*a.take(train + pre), *b.take(post)]):
        if gen == "STAGGER":  # its attributes are categories coded as ints: tell the tree
            x = {k: str(v) for k, v in x.items()}
        if i >= train:
            errs.append(float(model.predict_one(x) != y))
        model.learn_one(x, y)
    return np.array(errs)


def sequential_scenario(
    name: str, streams: list[np.ndarray], change: int, labels: list[str], limits: dict[str, int] | None = None
) -> list[Row]:
    rows = []
    for label in labels:
        limit = (limits or {}).get(label)
        runs = [run_sequential(label, xs, change, limit) for xs in streams]
        shown = f"{label} (first {limit // 1000}k)" if limit else label
        rows.append(summarise(name, shown, runs, label == labels[0], change < len(streams[0])))
    return rows


def feature_model(
    rng: np.random.Generator,
    n: int,
    shift_at: int | None = None,
    shift: float = 0.0,
    numeric: int = 16,
    categorical: int = 4,
) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    cols: dict[str, np.ndarray] = {}
    kinds: dict[str, str] = {}
    for j in range(numeric):
        make = [
            lambda: rng.normal(0, 1, n),
            lambda: rng.exponential(1, n),
            lambda: rng.lognormal(0, 1, n),
            lambda: rng.integers(0, 30, n) * 1.0,
        ][j % 4]
        x = make()
        if j == 0 and shift_at is not None:
            x[shift_at:] += shift
        cols[f"num{j}"], kinds[f"num{j}"] = x, "numeric"
    for j in range(categorical):
        cols[f"cat{j}"] = rng.choice([f"c{i}" for i in range(3 + 2 * j)], n).astype(object)
        kinds[f"cat{j}"] = "categorical"
    return cols, kinds


def fixed_threshold_model(
    cols: dict[str, np.ndarray], kinds: dict[str, str], rule: str, ref: int = 2000, window: int = 1000
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
            r = np.sort(cols[f][:ref])
            value[f] = lambda w, r=r: wasserstein_sorted(r, np.sort(w)) / max(r.std(), 1e-3)
        else:
            test = get_test(name).prepare(cols[f][:ref], window)
            value[f] = (
                (lambda w, t=test: -t(w).p_value) if rule == "p<0.05" else (lambda w, t=test: t(w).statistic)
            )
    cut = -0.05 if rule == "p<0.05" else 0.1
    starts = range(ref, n - window + 1, window)
    alarms = sum(any(value[f](cols[f][s : s + window]) > cut for f in kinds) for s in starts)
    return Run(None, alarms, n, n, time.perf_counter() - t)


def run_all(seeds: int, quick: bool, log: Callable[[str], None]) -> list[Row]:
    q = 0.05 if quick else 1.0
    rows: list[Row] = []
    pre, post, change = 5500, 4500, 5500
    for name, ramp in [("error 0.1->0.3 abrupt", 0), ("error 0.1->0.3 ramp 2k", 2000)]:
        streams = [error_stream(np.random.default_rng(s), pre, post, ramp) for s in range(seeds)]
        rows += sequential_scenario(name, streams, change, ERROR_DETECTORS)
        log(name)
    for shift in (0.25, 0.5):  # a Gaussian feature, N(10, 3), mean shift in SDs
        name = f"gaussian +{shift} sigma"
        step = 3 * shift * (np.arange(pre + post) >= change)
        streams = [np.random.default_rng(100 + s).normal(10, 3, pre + post) + step for s in range(seeds)]
        labels = FEATURE_DETECTORS + (["river:KSWIN"] if shift == 0.5 and not quick else [])
        rows += sequential_scenario(name, streams, change, labels)
        windowed = [run_windowed({"x": x}, {"x": "numeric"}, change, flag="x") for x in streams]
        runs, power = zip(*windowed, strict=True)
        rows.append(
            summarise(
                name,
                "driftline:FeatureSetDrift ks w=1000",
                list(runs),
                False,
                True,
                [w for ws in power for w in ws],
            )
        )
        log(name)
    # a categorical feature, one category's share 0.2 -> 0.3; river has no categorical detector: banks of
    # detectors on the one-hot columns. Driftline's bank watches increases only (any share change raises
    # some category's share) and splits the budget over the 5 categories
    name, cats = "categorical share 0.2->0.3", ["a", "b", "c", "d", "e"]
    runs_by: dict[str, list[Run]] = {}
    for s in range(seeds):
        rng = np.random.default_rng(200 + s)
        c = np.r_[rng.choice(cats, change), rng.choice(cats, post, p=[0.3, 0.175, 0.175, 0.175, 0.175])]
        onehot = [(c == k).astype(float) for k in cats]
        for label in (CATEGORY_BANK, "river:ADWIN", "river:PageHinkley"):
            shown = "driftline:bernoulli_cusum" if label == CATEGORY_BANK else label
            runs_by.setdefault(f"{shown} one-hot bank", []).append(run_bank(label, onehot, change))
        for w in (1000, 500):
            runs_by.setdefault(f"driftline:FeatureSetDrift chi2 w={w}", []).append(
                run_windowed({"c": c.astype(object)}, {"c": "categorical"}, change, window=w)[0]
            )
    for i, (label, runs) in enumerate(runs_by.items()):
        rows.append(summarise(name, label, runs, i == 0, True))
    log(name)
    n = int(1_000_000 * q)
    name = f"no drift error p=0.1, {n // 1000}k events"
    streams = [error_stream(np.random.default_rng(300 + s), n, 0) for s in range(seeds)]
    limits = {"river:HDDM_A": n // 5, "river:HDDM_W": n // 5}
    rows += sequential_scenario(name, streams, n, ERROR_DETECTORS, limits)
    log(name)
    n = int(200_000 * q)
    name = f"no drift gaussian, {n // 1000}k events"
    streams = [np.random.default_rng(400 + s).normal(10, 3, n) for s in range(seeds)]
    rows += sequential_scenario(name, streams, n, FEATURE_DETECTORS)
    log(name)
    train, gpre, gpost = (1000, 2000, 1500) if quick else (5000, 5000, 3000)
    for gen in ("SEA", "Agrawal", "STAGGER", "Sine"):
        name = f"{gen} + Hoeffding tree"
        streams = [hoeffding_error_stream(gen, 500 + s, train, gpre, gpost) for s in range(seeds)]
        rows += sequential_scenario(name, streams, gpre, ERROR_DETECTORS)
        log(name)
    n = int(200_000 * q)
    name = f"20 features no drift, {n // 1000}k rows"
    models = [feature_model(np.random.default_rng(600 + s), n) for s in range(seeds)]
    runs = [run_windowed(cols, kinds, n)[0] for cols, kinds in models]
    rows.append(summarise(name, "driftline:FeatureSetDrift ks/chi2 w=1000", runs, True, False))
    for rule in ("p<0.05", "psi>0.1", "wasserstein>0.1"):
        label = f"fixed per-feature {rule}" + (" (evidently default)" if rule == "p<0.05" else "")
        runs = [fixed_threshold_model(c, k, rule) for c, k in models]
        rows.append(summarise(name, label, runs, False, False))
    bank_rows = min(n, 50_000)
    for label in ("river:ADWIN", "river:PageHinkley"):
        runs = [
            run_bank(label, [c[f][:bank_rows] for f in k if k[f] == "numeric"], bank_rows) for c, k in models
        ]
        shown = f"{label} bank (16 numeric, first {bank_rows // 1000}k)"
        rows.append(summarise(name, shown, runs, False, False))
    log(name)
    name, runs, power = "20 features, one +0.25 sigma", [], []
    for s in range(seeds):
        cols, kinds = feature_model(np.random.default_rng(700 + s), 12_000, shift_at=5500, shift=0.25)
        r, ws = run_windowed(cols, kinds, 5500, flag="num0")
        runs.append(r)
        power += ws
    rows.append(summarise(name, "driftline:FeatureSetDrift ks/chi2 w=1000", runs, True, True, power))
    log(name)
    return rows


def targets(rows: list[Row]) -> list[dict]:
    """Per scenario: the recommended row against the best river default, of all and of those within the
    budget. A river detector's false-alarm rate is its rate on the matching no-drift stream (1M-event
    error streams / 4M-event Gaussian) where there is one, else the scenario's pre-change rate."""

    def base(detector: str) -> str:
        return detector.split(" (first")[0]

    no_drift = {
        (kind, base(r.detector)): r.false_alarms_per_100k
        for r in rows
        for kind in ("error", "gaussian")
        if r.scenario.startswith(f"no drift {kind}")
    }
    out = []
    for scenario in dict.fromkeys(r.scenario for r in rows):
        group = [r for r in rows if r.scenario == scenario]
        rec = next(r for r in group if r.recommended)
        kind = (
            "gaussian"
            if scenario.startswith("gaussian")
            else "error"
            if (scenario.startswith("error") or "Hoeffding" in scenario)
            else None
        )
        river = [
            r
            for r in group
            if r.detector.startswith("river:") and r.mean_delay is not None and (r.miss_rate or 0) < 0.5
        ]

        def fa(r: Row, kind: str | None = kind) -> float:  # the long no-drift stream resolves better
            return no_drift.get((kind, base(r.detector)), r.false_alarms_per_100k)

        best = min(river, key=lambda r: r.mean_delay or 0, default=None)
        within = min((r for r in river if fa(r) <= BUDGET), key=lambda r: r.mean_delay or 0, default=None)
        out.append(
            {
                "scenario": scenario,
                "recommended": rec.detector,
                "delay": rec.mean_delay,
                "best_river": best.detector if best else None,
                "best_river_delay": best.mean_delay if best else None,
                "best_river_within_budget": within.detector if within else None,
                "best_river_within_budget_delay": within.mean_delay if within else None,
                "false_alarms_per_100k": rec.false_alarms_per_100k,
                "miss_rate": rec.miss_rate,
            }
        )
    return out


def format_table(rows: list[Row]) -> str:
    head = (
        f"{'scenario':<34} {'detector':<58} {'delay':>7} {'miss':>5} {'FA/100k':>8} {'us/upd':>7} "
        f"{'power':>5}"
    )
    out, last = [head, "-" * len(head)], None
    for r in rows:
        if last is not None and r.scenario != last:
            out.append("")
        last = r.scenario
        delay = f"{r.mean_delay:7.0f}" if r.mean_delay is not None else f"{'-':>7}"
        miss = f"{r.miss_rate:5.2f}" if r.miss_rate is not None else f"{'-':>5}"
        power = f"{r.power:5.2f}" if r.power is not None else f"{'-':>5}"
        detector = ("* " if r.recommended else "  ") + r.detector
        out.append(
            f"{r.scenario:<34} {detector:<58} {delay} {miss} {r.false_alarms_per_100k:8.2f} "
            f"{r.us_per_update:7.2f} {power}"
        )
    return "\n".join(out)


def format_targets(rows: list[Row]) -> str:
    def d(v: float | None) -> str:  # noqa: E306
        return "-" if v is None else f"{v:.0f}"

    out = [
        "",
        "recommended vs best river default, mean delay (river rows missing >= half the changes",
        "left out; 'within budget': FA <= 0.5/100k on the matching no-drift stream, else in the scenario)",
    ]
    for t in targets(rows):
        if t["best_river"] is None:
            continue
        within = d(t["best_river_within_budget_delay"])
        out.append(
            f"  {t['scenario']:<30} {d(t['delay']):>5} vs {d(t['best_river_delay']):>5} "
            f"{(t['best_river'] or '-')[6:]:<24} within budget: {within:>5} "
            f"{(t['best_river_within_budget'] or '-')[6:]}"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="driftline bench detection", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    parser.add_argument("--seeds", type=int, default=20, help="seeds per scenario (default 20)")
    parser.add_argument("--quick", action="store_true", help="small run: 3 seeds, streams scaled down ~20x")
    args = parser.parse_args(argv)
    seeds = min(args.seeds, 3) if args.quick else args.seeds
    if seeds < 1:
        parser.error("--seeds must be >= 1")
    t = time.perf_counter()

    def log(msg: str) -> None:  # noqa: E306
        print(f"[{time.perf_counter() - t:6.1f}s] {msg}", file=sys.stderr, flush=True)

    rows = run_all(seeds, args.quick, log)
    if args.json:
        report = {
            "seeds": seeds,
            "quick": args.quick,
            "budget_per_100k": BUDGET,
            "rows": [asdict(r) for r in rows],
            "targets": targets(rows),
        }
        print(json.dumps(report, indent=1))
    else:
        print(
            f"Detection benchmark: {seeds} seeds per scenario, budget {BUDGET} false alarms per 100k "
            "events per model, * = Driftline recommended"
        )
        print(format_table(rows))
        print(format_targets(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
