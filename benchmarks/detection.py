"""Detection benchmark: Driftline's recommended detectors next to river's defaults (and evidently's
default per-feature thresholds), on the same seeded streams, in one process and one run.

    python benchmarks/detection.py [--json] [--seeds 20] [--quick]

Table: scenario x detector -> mean detection delay (events after the change, detected runs only),
miss rate, false alarms per 100k events (alarms before the change / events before the change; per
model for multi-feature scenarios), microseconds per update (per row for windowed detectors).
Rows marked ``*`` are Driftline's recommended configuration for the scenario. Scaled, to fit ~10
minutes on 2 cores: HDDM_A/HDDM_W run the first 200k events of the 1M-event stream (their updates
cost ~3 us); KSWIN (~300 us/update) runs only in the 0.5 sigma scenario; the river per-feature
detector banks in the 20-feature scenario run the first 50k rows and the numeric features only.
Each detector stops at its first alarm after the change (only that alarm counts for the delay).
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
class Run:  # one detector on one seeded stream
    first: int | None  # 0-based position of the first alarm at/after the change
    false_alarms: int
    pre_events: int
    updates: int
    seconds: float


# --- detectors -----------------------------------------------------------------------------------


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


def run_sequential(label: str, xs: np.ndarray, change: int, limit: int | None = None) -> Run:
    """Feed ``xs`` to a fresh detector; stop at the first alarm at or after ``change``."""
    vals = xs[:limit].tolist() if limit else xs.tolist()
    if label.startswith("river:"):
        name = label[6:].split(" ")[0]
        det = river_factory(name)()
        if name == "FHDDM":  # river's FHDDM alarms on a *drop* of its input: feed it 1 - error
            vals = [1.0 - v for v in vals]
        t = time.perf_counter()
        fa, first, i = 0, None, 0
        upd = det.update
        for i, v in enumerate(vals):  # noqa: B007
            upd(v)
            if det.drift_detected:
                if i < change:
                    fa += 1
                else:
                    first = i
                    break
    else:
        name, _, params = label[10:].partition(" ")
        kwargs = dict(p.split("=") for p in params.split()) if params else {}
        det = get_detector(name, **{k: float(v) for k, v in kwargs.items()})
        t = time.perf_counter()
        fa, first, i = 0, None, 0
        upd = det.update
        for i, v in enumerate(vals):  # noqa: B007
            if upd(v) is not None:
                if i < change:
                    fa += 1
                else:
                    first = i
                    break
    dt = time.perf_counter() - t
    return Run(first, fa, min(change, len(vals)), i + 1, dt)


def run_windowed(
    columns: dict[str, np.ndarray],
    kinds: dict[str, str],
    change: int,
    test: str = "ks",
    window: int = 1000,
    flag: str | None = None,
) -> tuple[Run, list[bool]]:
    """FeatureSetDrift over all rows; an alarm is known at the end of the window that raised it.
    Returns the run and, per post-change window, whether ``flag`` (a feature) was flagged."""
    det = FeatureSetDrift(
        kinds,
        window_size=window,
        false_alarms_per_100k=BUDGET,
        numeric_test=test if test in ("ks", "psi", "wasserstein") else "ks",
        categorical_test=test if test not in ("ks", "psi", "wasserstein") else "chi2",
    )
    n = len(next(iter(columns.values())))
    t = time.perf_counter()
    found = det.update(columns)
    dt = time.perf_counter() - t
    ends = sorted({d.window_end for d in found})
    fa = sum(1 for e in ends if e <= change)
    post = [e - 1 for e in ends if e > change]
    flagged = {d.window_end for d in found if d.feature == flag}
    first_full = det.reference_size + -(-(max(change - det.reference_size, 0)) // window) * window
    windows = [e in flagged for e in range(first_full + window, n + 1, window)]
    return Run(post[0] if post else None, fa, change, n, dt), windows


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


# --- scenarios -----------------------------------------------------------------------------------

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


def error_stream(rng: np.random.Generator, pre: int, post: int, ramp: int = 0) -> np.ndarray:
    p = np.r_[np.full(pre, 0.1), np.linspace(0.1, 0.3, ramp), np.full(post - ramp, 0.3)]
    return (rng.random(p.size) < p).astype(float)


def hoeffding_error_stream(gen: str, seed: int, pre: int, post: int) -> np.ndarray:
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
    for x, y in [*a.take(pre), *b.take(post)]:
        errs.append(float(model.predict_one(x) != y))
        model.learn_one(x, y)
    return np.array(errs)


def sequential_scenario(
    name: str,
    streams: list[np.ndarray],
    change: int,
    labels: list[str],
    recommended: str,
    limits: dict[str, int] | None = None,
) -> list[Row]:
    rows = []
    for label in labels:
        limit = (limits or {}).get(label)
        runs = [run_sequential(label, xs, change, limit) for xs in streams]
        rows.append(summarise(name, label, runs, label == recommended, change < len(streams[0])))
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
        x = [
            rng.normal(0, 1, n),
            rng.exponential(1, n),
            rng.lognormal(0, 1, n),
            rng.integers(0, 30, n) * 1.0,
        ][j % 4]
        if j == 0 and shift_at is not None:
            x[shift_at:] += shift
        cols[f"num{j}"], kinds[f"num{j}"] = x, "numeric"
    for j in range(categorical):
        cats = [f"c{i}" for i in range(3 + 2 * j)]
        cols[f"cat{j}"] = rng.choice(cats, n).astype(object)
        kinds[f"cat{j}"] = "categorical"
    return cols, kinds


def fixed_threshold_model(
    cols: dict[str, np.ndarray], kinds: dict[str, str], rule: str, ref: int = 2000, window: int = 1000
) -> Run:
    """Per-feature fixed thresholds (evidently's defaults for windows <= 1000 rows: KS / chi2
    p < 0.05; or the folklore cuts PSI > 0.1, normalised Wasserstein > 0.1 with Jensen-Shannon > 0.1
    for categorical features); a window is a model alarm if any feature crosses. No drift here."""
    names = {
        "p<0.05": ("ks", "chi2"),
        "psi>0.1": ("psi", "psi_categorical"),
        "wasserstein>0.1": ("wasserstein", "jensen_shannon"),
    }[rule]
    n = len(next(iter(cols.values())))
    t = time.perf_counter()
    prepared = {}
    for f, k in kinds.items():
        name = names[0] if k == "numeric" else names[1]
        if name == "wasserstein":  # only the distance is needed: skip the bootstrap null
            r = np.sort(cols[f][:ref])
            prepared[f] = lambda w, r=r: wasserstein_sorted(r, np.sort(w)) / max(r.std(), 1e-3)
        else:
            test = get_test(name).prepare(cols[f][:ref], window)
            prepared[f] = (
                (lambda w, t=test: t(w).p_value) if rule == "p<0.05" else (lambda w, t=test: t(w).statistic)
            )
    cut = 0.05 if rule == "p<0.05" else 0.1
    alarms = 0
    for s in range(ref, n - window + 1, window):
        for f in kinds:
            v = prepared[f](cols[f][s : s + window])
            if (v < cut) if rule == "p<0.05" else (v > cut):
                alarms += 1
                break
    return Run(None, alarms, n, n, time.perf_counter() - t)


def run_all(seeds: int, quick: bool, log: Callable[[str], None]) -> list[Row]:
    q = 0.1 if quick else 1.0
    rows: list[Row] = []
    pre, post, change = 5500, 4500, 5500
    # 1-2: error rate 0.1 -> 0.3, abrupt and over a 2,000-event ramp
    for name, ramp in [("error 0.1->0.3 abrupt", 0), ("error 0.1->0.3 ramp 2k", 2000)]:
        streams = [error_stream(np.random.default_rng(s), pre, post, ramp) for s in range(seeds)]
        rows += sequential_scenario(name, streams, change, ERROR_DETECTORS, ERROR_DETECTORS[0])
        log(name)
    # 3-4: Gaussian feature, 0.25 sigma and 0.5 sigma mean shifts (sequential and windowed)
    for shift in (0.25, 0.5):
        name = f"gaussian +{shift} sigma"
        streams = []
        for s in range(seeds):
            x = np.random.default_rng(100 + s).normal(10, 3, pre + post)
            x[change:] += 3 * shift
            streams.append(x)
        labels = FEATURE_DETECTORS + (["river:KSWIN"] if shift == 0.5 else [])
        rows += sequential_scenario(name, streams, change, labels, FEATURE_DETECTORS[0])
        runs, power = zip(
            *[run_windowed({"x": x}, {"x": "numeric"}, change, "ks", flag="x") for x in streams], strict=True
        )
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
    # 5: categorical share shift (one category 0.2 -> 0.3); river has no categorical detector:
    # a bank of river detectors on the one-hot columns, alarm if any fires
    name = "categorical share 0.2->0.3"
    cats, runs_by = ["a", "b", "c", "d", "e"], {}
    for s in range(seeds):
        rng = np.random.default_rng(200 + s)
        c = np.r_[
            rng.choice(cats, change), rng.choice(cats, post, p=[0.3, 0.175, 0.175, 0.175, 0.175])
        ].astype(object)
        for w in (1000, 500):
            runs_by.setdefault(f"driftline:FeatureSetDrift chi2 w={w}", []).append(
                run_windowed({"c": c}, {"c": "categorical"}, change, "chi2", window=w)[0]
            )
        for label in ("river:ADWIN", "river:PageHinkley"):
            bank = [run_sequential(label, (c == k).astype(float), change) for k in cats]
            firsts = [r.first for r in bank if r.first is not None]
            runs_by.setdefault(label + " one-hot bank", []).append(
                Run(
                    min(firsts) if firsts else None,
                    sum(r.false_alarms for r in bank),
                    change,
                    sum(r.updates for r in bank) // len(cats),
                    sum(r.seconds for r in bank),
                )
            )
    for label, runs in runs_by.items():
        rows.append(summarise(name, label, runs, label.endswith("w=500"), True))
    log(name)
    # 6: 1M events without drift (error stream p = 0.1): false alarms
    n = int(1_000_000 * q)
    name = f"no drift error p=0.1, {n // 1000}k events"
    streams = [error_stream(np.random.default_rng(300 + s), n, 0) for s in range(seeds)]
    rows += sequential_scenario(
        name,
        streams,
        n,
        ERROR_DETECTORS,
        ERROR_DETECTORS[0],
        {"river:HDDM_A": n // 5, "river:HDDM_W": n // 5},
    )
    log(name)
    n = int(200_000 * q)
    name = f"no drift gaussian, {n // 1000}k events"
    streams = [np.random.default_rng(400 + s).normal(10, 3, n) for s in range(seeds)]
    rows += sequential_scenario(name, streams, n, FEATURE_DETECTORS, FEATURE_DETECTORS[0])
    log(name)
    # 7: river generators, Hoeffding tree error stream, concept switched at `gpre`
    gpre, gpost = (3000, 2000) if quick else (4000, 3000)
    for gen in ("SEA", "Agrawal", "STAGGER", "Sine"):
        name = f"{gen} + Hoeffding tree"
        streams = [hoeffding_error_stream(gen, 500 + s, gpre, gpost) for s in range(seeds)]
        rows += sequential_scenario(name, streams, gpre, ERROR_DETECTORS, ERROR_DETECTORS[0])
        log(name)
    # 8: a 20-feature model without drift, and with one feature shifted 0.25 sigma
    n = int(200_000 * q)
    name = f"20 features no drift, {n // 1000}k rows"
    models = [feature_model(np.random.default_rng(600 + s), n) for s in range(seeds)]
    runs = [run_windowed(cols, kinds, n, "ks")[0] for cols, kinds in models]
    rows.append(summarise(name, "driftline:FeatureSetDrift ks/chi2 w=1000", runs, True, False))
    for rule in ("p<0.05", "psi>0.1", "wasserstein>0.1"):
        runs = [fixed_threshold_model(cols, kinds, rule) for cols, kinds in models]
        rows.append(
            summarise(
                name,
                f"fixed per-feature {rule}" + (" (evidently default)" if rule == "p<0.05" else ""),
                runs,
                False,
                False,
            )
        )
    bank_rows = min(n, 50_000)
    for label in ("river:ADWIN", "river:PageHinkley"):
        runs = []
        for cols, kinds in models:
            bank = [
                run_sequential(label, cols[f][:bank_rows], bank_rows)
                for f, k in kinds.items()
                if k == "numeric"
            ]
            runs.append(
                Run(
                    None,
                    sum(r.false_alarms for r in bank),
                    bank_rows,
                    bank_rows,
                    sum(r.seconds for r in bank),
                )
            )
        rows.append(
            summarise(name, f"{label} bank (16 numeric, {bank_rows // 1000}k rows)", runs, False, False)
        )
    log(name)
    name = "20 features, one +0.25 sigma"
    runs, power = [], []
    for s in range(seeds):
        cols, kinds = feature_model(np.random.default_rng(700 + s), 12_000, shift_at=5500, shift=0.25)
        r, ws = run_windowed(cols, kinds, 5500, "ks", flag="num0")
        runs.append(r)
        power += ws
    rows.append(summarise(name, "driftline:FeatureSetDrift ks/chi2 w=1000", runs, True, True, power))
    log(name)
    return rows


def format_table(rows: list[Row]) -> str:
    head = (f"{'scenario':<34} {'detector':<52} {'delay':>8} {'miss':>6} {'FA/100k':>9} "
            f"{'us/upd':>8} {'power':>6}")
    out, last = [head, "-" * len(head)], None
    for r in rows:
        if last is not None and r.scenario != last:
            out.append("")
        last = r.scenario
        mark = "* " if r.recommended else "  "
        delay = f"{r.mean_delay:8.0f}" if r.mean_delay is not None else f"{'-':>8}"
        miss = f"{r.miss_rate:6.2f}" if r.miss_rate is not None else f"{'-':>6}"
        power = f"{r.power:6.2f}" if r.power is not None else f"{'-':>6}"
        out.append(
            f"{r.scenario:<34} {mark + r.detector:<52} {delay} {miss} {r.false_alarms_per_100k:9.2f} "
            f"{r.us_per_update:8.2f} {power}"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="driftline bench detection", description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    parser.add_argument("--seeds", type=int, default=20, help="seeds per scenario (default 20)")
    parser.add_argument("--quick", action="store_true", help="small run: 3 seeds, streams scaled down 10x")
    args = parser.parse_args(argv)
    seeds = min(args.seeds, 3) if args.quick else args.seeds
    if seeds < 1:
        parser.error("--seeds must be >= 1")
    t = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t:6.1f}s] {msg}", file=sys.stderr, flush=True)

    rows = run_all(seeds, args.quick, log)
    if args.json:
        print(
            json.dumps(
                {
                    "seeds": seeds,
                    "quick": args.quick,
                    "budget_per_100k": BUDGET,
                    "rows": [asdict(r) for r in rows],
                },
                indent=1,
            )
        )
    else:
        print(
            f"Detection benchmark: {seeds} seeds per scenario, budget {BUDGET} false alarms per 100k events "
            f"per model, * = Driftline recommended"
        )
        print(format_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
