"""A synthetic production world: a real scikit-learn classifier served on a drifting stream.

The world has five numeric and two categorical features. A binary label depends on ``usage``,
``tenure``, ``support_calls``, ``plan`` and ``region`` (``income`` and ``age`` are noise to the
label). The scenario injects, at known event indices:

* a **covariate shift** in named features (default: ``income`` mean +1 sd, ``region`` shares
  move) -- the inputs change, the concept does not;
* a **concept change** (the label's dependence on ``tenure``, ``usage`` and ``plan`` flips) -- the
  served model's accuracy collapses until it is retrained.

Labels arrive after a random delay (in events), and a share of them never arrives. Everything
is deterministic for a seed.

>>> sc = Scenario(n_events=3000, covariate_shift_at=1000, concept_change_at=2000, seed=3)
>>> world = World(sc)
>>> X, y = world.sample(np.random.default_rng(0), 2000, concept=0, shifted=False)
>>> round(float(X["income"].mean()), 0), round(float(y.mean()), 2)
(60.0, 0.55)
>>> Xs, _ = world.sample(np.random.default_rng(0), 2000, concept=0, shifted=True)
>>> round(float(Xs["income"].mean()), 0)
75.0
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from driftline.contracts import Label, Prediction
from producers.serving import ModelServer

__all__ = [
    "NUMERIC",
    "CATEGORICAL",
    "Scenario",
    "SimBatch",
    "Simulator",
    "World",
    "make_model",
    "train_initial_model",
]

NUMERIC = ("age", "income", "tenure", "usage", "support_calls")
CATEGORICAL = ("region", "plan")
REGIONS = ("north", "south", "east", "west")
PLANS = ("basic", "plus", "pro")


@dataclass(frozen=True)
class Scenario:
    """Where and what drift is injected. Indices count predictions from 0."""

    model: str = "churn"
    n_events: int = 60_000
    covariate_shift_at: int = 20_000
    concept_change_at: int = 35_000
    shifted_features: tuple[str, ...] = ("income", "region")
    label_delay: tuple[int, int] = (50, 400)
    label_coverage: float = 0.95
    events_per_second: float = 20.0
    start_time: float = 1_767_225_600.0  # 2026-01-01T00:00:00Z, simulated event time
    seed: int = 7
    train_size: int = 5000

    def __post_init__(self) -> None:
        unknown = set(self.shifted_features) - set(NUMERIC + CATEGORICAL)
        if unknown:
            raise ValueError(f"shifted_features: unknown {sorted(unknown)}; valid: {NUMERIC + CATEGORICAL}")
        if not 0 < self.covariate_shift_at <= self.concept_change_at <= self.n_events:
            raise ValueError("need 0 < covariate_shift_at <= concept_change_at <= n_events")

    def time_of(self, index: int) -> float:
        return self.start_time + index / self.events_per_second


@dataclass(frozen=True)
class World:
    """The data-generating process: features, and labels under concept 0 or 1."""

    scenario: Scenario

    def sample(
        self, rng: np.random.Generator, n: int, *, concept: int, shifted: bool
    ) -> tuple[pd.DataFrame, np.ndarray]:
        moved = set(self.scenario.shifted_features) if shifted else set()
        cols: dict[str, np.ndarray] = {
            "age": rng.normal(45, 12, n) + (12.0 if "age" in moved else 0.0),
            "income": rng.normal(60, 15, n) + (15.0 if "income" in moved else 0.0),
            "tenure": rng.gamma(2.0, 2.0, n) * (1.6 if "tenure" in moved else 1.0),
            "usage": rng.normal(20, 5, n) + (5.0 if "usage" in moved else 0.0),
            "support_calls": rng.poisson(3.0 if "support_calls" in moved else 2.0, n).astype(float),
        }
        region_p = (0.15, 0.25, 0.2, 0.4) if "region" in moved else (0.4, 0.3, 0.2, 0.1)
        plan_p = (0.2, 0.3, 0.5) if "plan" in moved else (0.5, 0.3, 0.2)
        region = np.asarray(REGIONS, dtype=object)[rng.choice(4, n, p=region_p)]
        plan = np.asarray(PLANS, dtype=object)[rng.choice(3, n, p=plan_p)]
        X = pd.DataFrame({**cols, "region": region, "plan": plan})
        z_usage = (cols["usage"] - 20) / 5
        z_tenure = (cols["tenure"] - 4) / 2.8
        z_calls = (cols["support_calls"] - 2) / 1.4
        plan_eff = np.select([plan == "basic", plan == "plus"], [0.6, 0.0], -0.8)
        region_eff = np.select([region == "north", region == "south"], [0.3, -0.2], 0.0)
        if concept == 0:
            logit = 1.4 * z_usage - 1.2 * z_tenure + 0.8 * z_calls + plan_eff + region_eff
        else:
            logit = -1.2 * z_usage + 1.3 * z_tenure + 0.8 * z_calls - plan_eff + region_eff
        y = (logit + rng.normal(0, 0.6, n) > 0).astype(int)
        return X, y


def make_model() -> Pipeline:
    """The served model: one-hot categoricals, scaled numerics, logistic regression."""
    pre = ColumnTransformer(
        [
            ("cat", OneHotEncoder(handle_unknown="ignore"), list(CATEGORICAL)),
            ("num", StandardScaler(), list(NUMERIC)),
        ]
    )
    return Pipeline([("pre", pre), ("clf", LogisticRegression(max_iter=500))])


def train_initial_model(scenario: Scenario) -> Pipeline:
    """The first model: fitted on pre-drift data from the scenario's world."""
    X, y = World(scenario).sample(
        np.random.default_rng(scenario.seed + 2), scenario.train_size, concept=0, shifted=False
    )
    return make_model().fit(X, y)


@dataclass
class SimBatch:
    start_index: int
    predictions: list[Prediction]
    labels: list[Label] = field(default_factory=list)


class Simulator:
    """Serves the current model on the scenario's stream, one batch at a time.

    Between batches the caller may hand model updates to ``server`` (hot reload); the next
    batch is predicted by whatever version the server holds then.
    """

    def __init__(self, scenario: Scenario, server: ModelServer) -> None:
        self.scenario = scenario
        self.server = server
        self.world = World(scenario)
        self._rng = np.random.default_rng(scenario.seed)
        self._label_rng = np.random.default_rng(scenario.seed + 1)
        self._pending: list[tuple[int, Label]] = []  # (due index, label)
        self.index = 0

    def done(self) -> bool:
        return self.index >= self.scenario.n_events and not self._pending

    def batches(self, batch_size: int = 500) -> Iterator[SimBatch]:
        while not self.done():
            yield self.next_batch(batch_size)

    def next_batch(self, batch_size: int = 500) -> SimBatch:
        sc = self.scenario
        start = self.index
        n = max(0, min(batch_size, sc.n_events - start))
        preds: list[Prediction] = []
        if n:
            X, y = self._sample_span(start, n)
            versions, labels_pred, scores = self._serve(X, start)
            records = X.to_dict("records")
            delays = self._label_rng.integers(sc.label_delay[0], sc.label_delay[1] + 1, n)
            keep = self._label_rng.random(n) < sc.label_coverage
            for i in range(n):
                idx = start + i
                pid = f"{sc.model}-{sc.seed}-{idx}"
                t = sc.time_of(idx)
                preds.append(
                    Prediction(
                        prediction_id=pid,
                        model=sc.model,
                        model_version=versions[i],
                        event_time=t,
                        features=records[i],
                        prediction=int(labels_pred[i]),
                        score=float(scores[i]),
                    )
                )
                if keep[i]:
                    due = idx + int(delays[i])
                    self._pending.append(
                        (
                            due,
                            Label(
                                prediction_id=pid, model=sc.model, event_time=sc.time_of(due), label=int(y[i])
                            ),
                        )
                    )
            self.index = start + n
        else:
            self.index = max(self.index, max((d for d, _ in self._pending), default=self.index) + 1)
        due_now = self.index
        self._pending.sort(key=lambda p: p[0])
        cut = next((k for k, (d, _) in enumerate(self._pending) if d >= due_now), len(self._pending))
        labels = [lab for _, lab in self._pending[:cut]]
        del self._pending[:cut]
        return SimBatch(start_index=start, predictions=preds, labels=labels)

    def _serve(self, X: pd.DataFrame, start: int) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Predict rows ``start``.. with the served model; a model update scheduled to take effect
        inside the batch (:meth:`ModelServer.advance`) serves from its first prediction at or past
        its event time -- not from the next batch, so the switch does not depend on batch sizes."""
        sc, n = self.scenario, len(X)
        at = self.server.scheduled_at
        cut = n
        if at is not None:
            due = sc.start_time + (start + np.arange(n)) / sc.events_per_second >= at
            cut = int(np.argmax(due)) if due.any() else n
        versions: list[str] = []
        preds, scores = [], []
        for a, b in ((0, cut), (cut, n)):
            if a == cut and cut < n:
                self.server.advance(sc.time_of(start + cut))
            if b > a:
                p, s = self.server.predict(X.iloc[a:b])
                versions += [self.server.version] * (b - a)
                preds.append(p)
                scores.append(s)
        return versions, np.concatenate(preds), np.concatenate(scores)

    def _sample_span(self, start: int, n: int) -> tuple[pd.DataFrame, np.ndarray]:
        """Rows for indices [start, start+n), split at the scenario's change points."""
        sc = self.scenario
        cuts = sorted(
            {start, start + n}
            | {c for c in (sc.covariate_shift_at, sc.concept_change_at) if start < c < start + n}
        )
        parts_X, parts_y = [], []
        for a, b in zip(cuts, cuts[1:], strict=False):
            X, y = self.world.sample(
                self._rng, b - a, concept=int(a >= sc.concept_change_at), shifted=a >= sc.covariate_shift_at
            )
            parts_X.append(X)
            parts_y.append(y)
        return pd.concat(parts_X, ignore_index=True), np.concatenate(parts_y)
