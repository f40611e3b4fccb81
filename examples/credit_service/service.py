"""A credit-risk service instrumented with Driftline's SDK, monitored and retrained in one process.

The service scores loan applications with its own sklearn pipeline (train.py), logs every prediction
and, later, every outcome with :class:`producers.sdk.DriftlineClient`. Driftline runs beside it on an
in-memory bus -- the same processor core, alert routing, retrain worker and hot reload as on Kafka --
configured by spec.yaml alone. Halfway through, the world changes (a recession: incomes fall and
what predicts a default changes): Driftline alerts, retrains with the team's ``train:fit`` on the
declared features, and the service switches to the new version.

    python examples/credit_service/service.py            # the story, line by line
    python examples/credit_service/service.py --json     # one JSON summary line
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import deque
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd

from detectors.tasks import get_task
from driftline.app.models_cli import register_model
from driftline.config import DriftlineSettings
from driftline.contracts import Alert, ModelUpdate, decode, decode_notification
from driftline.registry import LocalModelRegistry
from driftline.transport import InMemoryBus
from producers.sdk import DriftlineClient
from producers.serving import ModelServer
from retrain_worker.worker import RetrainOutcome, RetrainWorker
from stream_processors.control.handler import AlertHandler
from stream_processors.control.inprocess import AlertRoutingRunner
from stream_processors.control.routing import AlertRouter
from stream_processors.core.processor import ProcessorCore
from stream_processors.runners.inprocess import ProcessorRunner

sys.path.insert(0, str(Path(__file__).resolve().parent))  # train.py, when run from another folder
import train  # noqa: E402 -- the team's trainer; the spec names it too (train:fit)

HERE = Path(__file__).resolve().parent
MODEL = "credit-risk"
START, RATE = 1_700_000_000.0, 10.0  # event time of the first application; applications per second
LABEL_DELAY = 100  # an outcome is known 100 applications after its prediction


def applications(rng: np.random.Generator, n: int, recession: bool) -> tuple[pd.DataFrame, np.ndarray]:
    """``n`` applications and whether each defaults. In a recession incomes fall by one standard
    deviation and debt stops predicting defaults the way it did (the concept changes)."""
    income = rng.normal(40.0 if recession else 55.0, 15.0, n)
    debt = np.clip(rng.normal(0.35, 0.12, n), 0.0, 1.0)
    age = rng.normal(40.0, 11.0, n)
    region = rng.choice(["north", "south", "east", "west"], n, p=[0.3, 0.3, 0.2, 0.2])
    employment = rng.choice(["salaried", "self", "none"], n, p=[0.6, 0.3, 0.1])
    z_income, z_debt = (income - 55.0) / 15.0, (debt - 0.35) / 0.12
    effect = np.select([employment == "none", employment == "self"], [0.8, 0.3], 0.0)
    sign = -1.0 if recession else 1.0
    logit = -0.8 + sign * (1.8 * z_debt - 1.0 * z_income) + effect
    defaulted = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(int)
    X = pd.DataFrame(
        {
            "customer_id": [f"c{k}" for k in rng.integers(0, 10**9, n)],
            "income": income,
            "debt_ratio": debt,
            "age": age,
            "region": region,
            "employment": employment,
        }
    )
    return X, defaulted


class Loop:
    """The service and Driftline over one bus, stepped in turn."""

    def __init__(self, settings: DriftlineSettings, registry: LocalModelRegistry, say: Any) -> None:
        topics, self.say = settings.topics, say
        self.bus = bus = InMemoryBus()
        self.server = ModelServer(MODEL, registry, get_task("binary"))
        self.client = DriftlineClient(bus.sink(), model=MODEL, model_version=self.server.version)
        core = ProcessorCore(settings.monitor, topics, models=settings.models)
        inputs = bus.source([topics.predictions, topics.labels], "processor")
        self.processor = ProcessorRunner(core, inputs, bus.sink())
        handler = AlertHandler(AlertRouter(settings.routing), topics)
        self.routing = AlertRoutingRunner(handler, bus.source(handler.inputs, "routing"), bus.sink(), [])
        # the worker takes the whole settings: credit-risk retrains with its spec's recipe (train:fit)
        self.worker = RetrainWorker(settings, topics, registry, bus, bus.sink())
        self.requests = bus.source([topics.retrain], "worker")
        self.updates = bus.source([topics.models], "serving")
        self.notified = bus.source([topics.notifications], "printer")
        self.waiting: deque[tuple[str, int, float]] = deque()  # outcomes not known yet
        self.index, self.rows = 0, []  # rows: (index, version served, prediction, label)
        self.alerts: list[dict[str, Any]] = []
        self.outcomes: list[RetrainOutcome] = []

    def serve(self, X: pd.DataFrame, y: np.ndarray) -> None:
        """Score a batch as the service does, and log predictions and the outcomes now known."""
        prediction, score = self.server.predict(X[train.NUMERIC + train.CATEGORICAL])
        self.client.model_version = self.server.version
        for row, p, s, label in zip(X.to_dict("records"), prediction, score, y, strict=True):
            t = START + self.index / RATE
            pid = self.client.log_prediction(row, int(p), score=float(s), event_time=t)
            if pid is not None:
                self.waiting.append((pid, int(label), t))
            self.rows.append((self.index, self.server.version, int(p), int(label)))
            self.index += 1
            while len(self.waiting) > LABEL_DELAY:
                done_pid, done_label, _ = self.waiting.popleft()
                self.client.log_label(done_pid, done_label, event_time=t)

    def step(self) -> None:
        while self.processor.run_once():
            pass
        self.routing.run_once()
        for note in map(decode_notification, (r.value for r in self.notified.poll(1000))):
            if isinstance(note, Alert):
                at, v = note.detected_at_index, note.model_version
                self.alerts.append({"type": note.type, "feature": note.feature, "at": at})
                self.say(f"#{at:>6}  ALERT {note.type:<16} v{v} {note.message}")
        outs = [self.worker.submit_record(r) for r in self.requests.poll(100)] + self.worker.step()
        for out in (o for o in outs if o is not None and o.status != "skipped"):
            self.outcomes.append(out)
            m = out.metrics
            vs = f"accuracy {m.get('challenger_accuracy', 0):.3f} vs {m.get('champion_accuracy', 0):.3f}"
            self.say(f"#{self.index:>6}  RETRAIN {out.status} -> v{out.version}: {out.reason} ({vs})")
            if train.FITS:
                seen = train.FITS[-1]
                self.say(f"          train:fit was given {seen['rows']} rows of {seen['columns']}")
        for rec in self.updates.poll(100):
            update = decode(ModelUpdate, rec.value)
            if self.server.apply(update):
                self.say(f"#{self.index:>6}  serving now uses {MODEL} v{update.version}")

    def accuracy(self, lo: int, hi: int, version: str | None = None) -> float | None:
        ok = [p == y for i, v, p, y in self.rows if lo <= i < hi and (version is None or v == version)]
        return round(float(np.mean(ok)), 3) if ok else None


def bootstrap(registry_dir: str, rng: np.random.Generator) -> LocalModelRegistry:
    """Version 1: trained by the team with train.fit, saved as a file, registered as
    ``driftline models register credit-risk model.joblib`` would."""
    X, y = applications(rng, 3000, recession=False)
    model = train.fit(X[train.NUMERIC + train.CATEGORICAL], pd.Series(y))
    artifact = Path(registry_dir).parent / "model.joblib"
    joblib.dump(model, artifact)
    register_model(MODEL, str(artifact), registry_dir=registry_dir)
    train.FITS.clear()  # from here on, only the retrains' calls
    return LocalModelRegistry(registry_dir)


def run(n: int = 10_000, drift_at: int = 5_000, seed: int = 7, say: Any = print) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    settings = DriftlineSettings.load(config=str(HERE / "spec.yaml"))
    registry = bootstrap(tempfile.mkdtemp(prefix="credit-registry-") + "/registry", rng)
    loop = Loop(settings, registry, say)
    say(f"serving {MODEL} v{loop.server.version}; {n} applications, a recession from #{drift_at}")
    while loop.index < n:
        X, y = applications(rng, 250, recession=loop.index >= drift_at)
        loop.serve(X, y)
        loop.step()
    loop.processor.drain()
    loop.step()
    retrained = [o.version for o in loop.outcomes if o.status == "promoted"]
    summary = {
        "alerts": loop.alerts,
        "retrains": [{"status": o.status, "version": o.version, **o.metrics} for o in loop.outcomes],
        "trainer_calls": train.FITS,
        "served_version": loop.server.version,
        "accuracy_before_drift": loop.accuracy(0, drift_at),
        "accuracy_after_drift_v1": loop.accuracy(drift_at, n, "1"),
        "accuracy_after_retrain": loop.accuracy(drift_at, n, retrained[-1]) if retrained else None,
        "drift_at": drift_at,
    }
    say(
        f"accuracy before the recession {summary['accuracy_before_drift']}, v1 after it "
        f"{summary['accuracy_after_drift_v1']}, v{loop.server.version} after the retrain "
        f"{summary['accuracy_after_retrain']}"
    )
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print one JSON summary line only")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    summary = run(seed=args.seed, say=(lambda _: None) if args.json else print)
    if args.json:
        print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
