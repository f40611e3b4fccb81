"""Retraining with the spec's recipe: the user's trainer (with its own preprocessing) fits on the
declared features only, a bad trainer fails at start-up naming its key, one that raises is a
notified failure and never a crash."""

from __future__ import annotations

import importlib
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from driftline.config import DriftlineSettings, RetrainSettings, Topics
from driftline.contracts import ModelUpdate, RetrainOutcome, decode
from driftline.errors import ConfigError
from driftline.registry import LocalModelRegistry
from driftline.transport import InMemoryBus
from producers.serving import ModelServer
from producers.simulator import Scenario, World
from retrain_worker.worker import RetrainWorker

TOPICS = Topics()
SC = Scenario(n_events=10_000, covariate_shift_at=2000, concept_change_at=4000, seed=5)  # as conftest's
SETTINGS = RetrainSettings(min_samples=800, train_window=1500, cooldown_s=50)
DECLARED = ["usage", "tenure", "support_calls", "plan", "region"]  # income: undeclared; age: ignore

TRAINER = """
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

SEEN = []

def fit(X, y):
    SEEN.append((list(X.columns), type(y).__name__, len(X)))
    pre = ColumnTransformer([
        ("cat", OneHotEncoder(handle_unknown="ignore"), ["plan", "region"]),
        ("num", StandardScaler(), ["usage", "tenure", "support_calls"]),
    ])
    return Pipeline([("pre", pre), ("clf", LogisticRegression(max_iter=500))]).fit(X, y)

def broken(X, y):
    raise ValueError("the solver did not converge")

NOT_A_FUNCTION = 3
"""


def _spec(folder: Path, trainer: str, extra: str = "") -> str:
    """A spec beside a trainer module of its own (a fresh module name: tests share sys.modules)."""
    module = f"trainer_{uuid.uuid4().hex[:8]}"
    (folder / f"{module}.py").write_text(TRAINER)
    spec = f"""
    models:
      churn:
        features: {{usage: numeric, tenure: numeric, support_calls: numeric, plan: categorical,
                    region: categorical, age: ignore}}
        retrain: {{trainer: "{module}:{trainer}", min_samples: 300{extra}}}
    """
    path = folder / "spec.yaml"
    path.write_text(textwrap.dedent(spec))
    return str(path)


def _champion(registry: LocalModelRegistry, folder: Path) -> None:
    """Version 1: the same kind of pipeline, trained on pre-change data and the declared features."""
    _spec(folder, "fit")
    sys.path.append(str(folder))
    fit = importlib.import_module(_latest_module(folder)).fit
    X, y = World(SC).sample(np.random.default_rng(0), 2000, concept=0, shifted=False)
    registry.register("churn", fit(X[DECLARED], pd.Series(y)))


def _latest_module(folder: Path) -> str:
    return max(folder.glob("trainer_*.py"), key=lambda p: p.stat().st_mtime_ns).stem


def _worker(spec: str, registry: LocalModelRegistry, bus: InMemoryBus, **kwargs: Any) -> RetrainWorker:
    settings = DriftlineSettings.load(config=spec, retrain=SETTINGS)
    return RetrainWorker(settings, TOPICS, registry, bus, bus.sink(), **kwargs)


def test_the_spec_trainer_fits_on_the_declared_features_and_its_model_is_served(
    tmp_path: Path, bus: InMemoryBus, fill_scored, make_request
) -> None:
    registry = LocalModelRegistry(tmp_path / "reg")
    _champion(registry, tmp_path)
    server = ModelServer("churn", registry)  # serving v1
    worker = _worker(_spec(tmp_path, "fit"), registry, bus)
    fill_scored(concept=1, n=600, start=100)  # 600: enough for the recipe's 300, not the global 800
    assert worker.submit(make_request("a1", t=100.0)) is None
    (out,) = worker.step()
    assert out.status == "promoted" and out.version == "2", out.reason
    assert out.metrics["challenger_accuracy"] > out.metrics["champion_accuracy"] + 0.2
    seen = importlib.import_module(_latest_module(tmp_path)).SEEN
    # declared order; the first min_samples (300) labelled rows, 30 % of them held out for validation
    assert seen == [(DECLARED, "Series", 210)]
    (update,) = [decode(ModelUpdate, r.value) for r in bus.log(TOPICS.models)]
    assert server.apply(update) and server.version == "2"
    X, _ = World(SC).sample(np.random.default_rng(1), 50, concept=1, shifted=True)
    prediction, score = server.predict(X[DECLARED])
    assert len(prediction) == 50 and np.all((score >= 0) & (score <= 1))


def test_a_trainer_that_raises_is_a_notified_failure_not_a_crash(
    tmp_path: Path, bus: InMemoryBus, fill_scored, make_request
) -> None:
    registry = LocalModelRegistry(tmp_path / "reg")
    _champion(registry, tmp_path)
    worker = _worker(_spec(tmp_path, "broken"), registry, bus, max_attempts=2)
    fill_scored(concept=1, n=600, start=100)
    worker.submit(make_request("a1", t=100.0))
    assert worker.step() == []  # first attempt failed: tried again at the next step
    (out,) = worker.step()
    assert out.status == "failed"
    assert ":broken" in out.reason and "ValueError: the solver did not converge" in out.reason
    (told,) = [decode(RetrainOutcome, r.value) for r in bus.log(TOPICS.notifications)]
    assert told.request_id == "a1" and told.status == "failed"
    assert registry.champion("churn").version == "1" and bus.log(TOPICS.models) == []


@pytest.mark.parametrize(
    ("trainer", "says"),
    [
        ("no_such_module_here:fit", "cannot import 'no_such_module_here'"),
        ("{module}:missing", "has no attribute 'missing'"),
        ("{module}:NOT_A_FUNCTION", "is a int, not a function"),
    ],
)
def test_a_bad_trainer_fails_at_start_up_naming_its_key(
    tmp_path: Path, bus: InMemoryBus, trainer: str, says: str
) -> None:
    spec = _spec(tmp_path, "fit")
    module = _latest_module(tmp_path)
    text = Path(spec).read_text().replace(f"{module}:fit", trainer.format(module=module))
    Path(spec).write_text(text)
    with pytest.raises(ConfigError, match=r"^models\.churn\.retrain\.trainer: ") as err:
        _worker(spec, LocalModelRegistry(tmp_path / "reg"), bus)
    assert says in str(err.value)


def test_without_a_trainer_the_champion_is_refitted_on_every_feature(
    tmp_path: Path, registry: LocalModelRegistry, bus: InMemoryBus, fill_scored, make_request
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("models:\n  churn:\n    features: {usage: numeric}\n    retrain: {min_samples: 300}\n")
    worker = _worker(str(spec), registry, bus)
    fill_scored(concept=1, n=600, start=100)
    worker.submit(make_request("a1", t=100.0))
    (out,) = worker.step()
    assert out.status == "promoted"  # refit_clone: the simulator's model takes all seven features
