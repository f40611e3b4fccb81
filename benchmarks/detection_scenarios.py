"""The detection benchmark's scenarios: seeded streams with a known change (or none), and the detectors
each scenario compares, run in one fixed order so rows and seeds stay comparable between runs."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from detection_runs import (
    BUDGET,
    Kind,
    Row,
    Run,
    fixed_threshold_model,
    run_bank,
    run_sequential,
    run_windowed,
    summarise,
)

from detectors.registry import RECOMMENDED_ERROR_DETECTOR, recommended_params


def _label(name: str, params: dict[str, object]) -> str:
    return " ".join([f"driftline:{name}", *(f"{k}={v}" for k, v in params.items())])


# the first label of each list is Driftline's recommendation for the scenario (marked * in the table)
RECOMMENDED_ERROR = _label(RECOMMENDED_ERROR_DETECTOR, recommended_params(RECOMMENDED_ERROR_DETECTOR))
ERROR_DETECTORS = [
    RECOMMENDED_ERROR,
    f"driftline:bernoulli_cusum false_alarms_per_100k={BUDGET}",
    "river:ADWIN",
    "river:PageHinkley",
    "river:DDM",
    "river:EDDM",
    "river:HDDM_A",
    "river:HDDM_W",
    "river:FHDDM (fed 1-error)",
]
FEATURE_DETECTORS = [
    f"driftline:gaussian_cusum false_alarms_per_100k={BUDGET}",
    "river:ADWIN",
    "river:PageHinkley",
]
# one detector per category, the budget split over the 5 categories
CATEGORY_BANK = "driftline:bernoulli_cusum false_alarms_per_100k=0.1 fast_odds_ratio=None"

Log = Callable[[str], None]
PRE, POST, CHANGE = 5500, 4500, 5500  # events before / after the change in the change scenarios


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
) -> tuple[dict[str, np.ndarray], dict[str, Kind]]:
    cols: dict[str, np.ndarray] = {}
    kinds: dict[str, Kind] = {}
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


def error_scenarios(seeds: int, log: Log) -> list[Row]:
    rows: list[Row] = []
    for name, ramp in [("error 0.1->0.3 abrupt", 0), ("error 0.1->0.3 ramp 2k", 2000)]:
        streams = [error_stream(np.random.default_rng(s), PRE, POST, ramp) for s in range(seeds)]
        rows += sequential_scenario(name, streams, CHANGE, ERROR_DETECTORS)
        log(name)
    return rows


def gaussian_scenarios(seeds: int, quick: bool, log: Log) -> list[Row]:
    rows: list[Row] = []
    for shift in (0.25, 0.5):  # a Gaussian feature, N(10, 3), mean shift in SDs
        name = f"gaussian +{shift} sigma"
        step = 3 * shift * (np.arange(PRE + POST) >= CHANGE)
        streams = [np.random.default_rng(100 + s).normal(10, 3, PRE + POST) + step for s in range(seeds)]
        labels = FEATURE_DETECTORS + (["river:KSWIN"] if shift == 0.5 and not quick else [])
        rows += sequential_scenario(name, streams, CHANGE, labels)
        windowed = [run_windowed({"x": x}, {"x": "numeric"}, CHANGE, flag="x") for x in streams]
        runs, power = zip(*windowed, strict=True)
        label = "driftline:FeatureSetDrift ks w=1000"
        rows.append(summarise(name, label, list(runs), False, True, [w for ws in power for w in ws]))
        log(name)
    return rows


def categorical_scenario(seeds: int, log: Log) -> list[Row]:
    """One category's share 0.2 -> 0.3. river has no categorical detector: banks of detectors on the
    one-hot columns. Driftline's bank watches increases only (any share change raises some category's
    share) and splits the budget over the 5 categories."""
    name, cats = "categorical share 0.2->0.3", ["a", "b", "c", "d", "e"]
    runs_by: dict[str, list[Run]] = {}
    for s in range(seeds):
        rng = np.random.default_rng(200 + s)
        c = np.r_[rng.choice(cats, CHANGE), rng.choice(cats, POST, p=[0.3, 0.175, 0.175, 0.175, 0.175])]
        onehot = [(c == k).astype(float) for k in cats]
        for label in (CATEGORY_BANK, "river:ADWIN", "river:PageHinkley"):
            shown = "driftline:bernoulli_cusum" if label == CATEGORY_BANK else label
            runs_by.setdefault(f"{shown} one-hot bank", []).append(run_bank(label, onehot, CHANGE))
        for w in (1000, 500):
            runs_by.setdefault(f"driftline:FeatureSetDrift chi2 w={w}", []).append(
                run_windowed({"c": c.astype(object)}, {"c": "categorical"}, CHANGE, window=w)[0]
            )
    rows = [summarise(name, label, runs, i == 0, True) for i, (label, runs) in enumerate(runs_by.items())]
    log(name)
    return rows


def no_drift_scenarios(seeds: int, q: float, log: Log) -> list[Row]:
    n = int(1_000_000 * q)
    name = f"no drift error p=0.1, {n // 1000}k events"
    streams = [error_stream(np.random.default_rng(300 + s), n, 0) for s in range(seeds)]
    limits = {"river:HDDM_A": n // 5, "river:HDDM_W": n // 5}
    rows = sequential_scenario(name, streams, n, ERROR_DETECTORS, limits)
    log(name)
    n = int(200_000 * q)
    name = f"no drift gaussian, {n // 1000}k events"
    streams = [np.random.default_rng(400 + s).normal(10, 3, n) for s in range(seeds)]
    rows += sequential_scenario(name, streams, n, FEATURE_DETECTORS)
    log(name)
    return rows


def hoeffding_scenarios(seeds: int, quick: bool, log: Log) -> list[Row]:
    rows: list[Row] = []
    train, pre, post = (1000, 2000, 1500) if quick else (5000, 5000, 3000)
    for gen in ("SEA", "Agrawal", "STAGGER", "Sine"):
        name = f"{gen} + Hoeffding tree"
        streams = [hoeffding_error_stream(gen, 500 + s, train, pre, post) for s in range(seeds)]
        rows += sequential_scenario(name, streams, pre, ERROR_DETECTORS)
        log(name)
    return rows


def feature_model_scenarios(seeds: int, q: float, log: Log) -> list[Row]:
    n = int(200_000 * q)
    name = f"20 features no drift, {n // 1000}k rows"
    models = [feature_model(np.random.default_rng(600 + s), n) for s in range(seeds)]
    runs = [run_windowed(cols, kinds, n)[0] for cols, kinds in models]
    rows = [summarise(name, "driftline:FeatureSetDrift ks/chi2 w=1000", runs, True, False)]
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
    name, runs = "20 features, one +0.25 sigma", []
    power: list[bool] = []
    for s in range(seeds):
        cols, kinds = feature_model(np.random.default_rng(700 + s), 12_000, shift_at=5500, shift=0.25)
        r, ws = run_windowed(cols, kinds, 5500, flag="num0")
        runs.append(r)
        power += ws
    rows.append(summarise(name, "driftline:FeatureSetDrift ks/chi2 w=1000", runs, True, True, power))
    log(name)
    return rows


def run_all(seeds: int, quick: bool, log: Log) -> list[Row]:
    q = 0.05 if quick else 1.0
    return [
        *error_scenarios(seeds, log),
        *gaussian_scenarios(seeds, quick, log),
        *categorical_scenario(seeds, log),
        *no_drift_scenarios(seeds, q, log),
        *hoeffding_scenarios(seeds, quick, log),
        *feature_model_scenarios(seeds, q, log),
    ]
