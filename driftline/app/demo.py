"""The closed loop, end to end: simulator -> processor -> routing -> retrain -> serving.

:func:`run_embedded` wires every component over one :class:`~driftline.transport.InMemoryBus`
and steps them in turn (no broker, no threads, deterministic for a seed). :func:`build_report`
turns what the topics hold -- scored events, delivered alerts, model updates -- into the
figures the demo prints; Kafka mode builds the same report from the same topics on a broker.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from detectors.tasks import Task, get_task
from driftline.app.alerts_cli import notification_report
from driftline.config import DriftlineSettings, Topics
from driftline.contracts import (
    Alert,
    Incident,
    Metric,
    ModelUpdate,
    Notification,
    Scored,
    decode,
    decode_notification,
    encode,
)
from driftline.errors import DriftlineError
from driftline.registry import ModelRegistry, open_registry
from driftline.transport import InMemoryBus, Sink
from producers.sdk import DriftlineClient
from producers.serving import ModelServer
from producers.simulator import Scenario, Simulator, train_initial_model
from retrain_worker.rollback import RollbackRunner, watcher_for
from retrain_worker.worker import RetrainOutcome, RetrainWorker
from stream_processors.control.handler import AlertHandler
from stream_processors.control.inprocess import AlertRoutingRunner
from stream_processors.control.routing import AlertRouter
from stream_processors.control.sinks import Delivery
from stream_processors.control.store import AlertStore
from stream_processors.core.announcements import Announcements
from stream_processors.core.processor import ProcessorCore
from stream_processors.runners.announced import SourceTable
from stream_processors.runners.inprocess import ProcessorRunner

__all__ = [
    "DEMO_SPEC",
    "DemoResult",
    "announce_version",
    "build_report",
    "bootstrap_registry",
    "demo_settings",
    "run_embedded",
]

log = logging.getLogger(__name__)
Printer = Callable[[str], None]

# the demo's monitor spec (in a source checkout): it declares the simulator's model
DEMO_SPEC = Path(__file__).resolve().parents[2] / "examples" / "demo" / "driftline.yaml"


def demo_settings(settings: DriftlineSettings, spec: Path = DEMO_SPEC) -> DriftlineSettings:
    """``settings`` with the demo spec's models added, for those ``settings`` does not declare itself
    (a user's own ``--config`` wins); unchanged where the file is absent (an installed package)."""
    if not spec.is_file():
        return settings
    models = DriftlineSettings.load(config=str(spec)).models
    if not (missing := {m: s for m, s in models.items() if m not in settings.models}):
        return settings
    return settings.model_copy(update={"models": {**settings.models, **missing}})


@dataclass
class DemoResult:
    report: dict[str, Any]
    timeline: list[str] = field(default_factory=list)
    workdir: str | None = None  # Kafka mode: where the component processes wrote their logs


def bootstrap_registry(scenario: Scenario, registry: ModelRegistry) -> str:
    """Train the first model on pre-drift data and register it as champion (version 1)."""
    try:
        return registry.champion(scenario.model).version
    except Exception:
        model = train_initial_model(scenario)
        return registry.register(scenario.model, model, metrics={}, triggered_by="bootstrap").version


def announce_version(
    sink: Sink, topics: Topics, model: str, version: str, *, sha256: str = "", created_at: float = 0.0
) -> None:
    """Tell the processor that ``model`` ``version`` exists (a "registered" :class:`ModelUpdate` on the
    models topic: serving does not switch on it); returns once the broker has it, so predictions
    produced afterwards are monitored."""
    update = ModelUpdate(
        model=model,
        version=version,
        kind="registered",
        previous_version=None,
        artifact_uri="",
        artifact_sha256=sha256,
        created_at=created_at,
    )
    failed = getattr(sink, "failed", 0)
    sink.send(topics.models, model.encode(), encode(update), None)
    if sink.flush(30.0) or getattr(sink, "failed", 0) > failed:
        raise DriftlineError(f"the announcement of {model} v{version} on {topics.models!r} was not delivered")


class EmbeddedLoop:
    """Every component of the closed loop over one :class:`InMemoryBus`, stepped in turn: the
    simulated service, the processor, alert routing, the retrain worker and serving's hot reload."""

    def __init__(
        self, scenario: Scenario, settings: DriftlineSettings, registry_dir: str, say: Printer
    ) -> None:
        topics = self.topics = settings.topics
        self.scenario, self.settings, self.say = scenario, settings, say
        self.bus = bus = InMemoryBus()
        self.delivery = Delivery(settings.routing, bus.sink())  # a bad routing.sinks fails before it runs
        self.task = get_task(settings.monitor.task)
        self.registry = open_registry(settings.retrain, registry_dir)
        bootstrap_registry(scenario, self.registry)
        self.server = ModelServer(scenario.model, self.registry, self.task)
        announce_version(bus.sink(), topics, scenario.model, self.server.version)  # before the stream
        self.sim = Simulator(scenario, self.server)
        self.client = DriftlineClient(
            bus.sink(), model=scenario.model, model_version=self.server.version, topics=topics
        )
        announced = settings.monitor.require_announcement
        self.processor = ProcessorRunner(
            ProcessorCore(
                settings.monitor,
                topics,
                announcements=Announcements(topics.models) if announced else None,
                models=settings.models,
            ),
            bus.source([topics.predictions, topics.labels], "processor"),
            bus.sink(),
            announcements=SourceTable(bus.source([topics.models], "processor-announcements"))
            if announced
            else None,
        )
        handler = AlertHandler(AlertRouter(settings.routing), topics)
        store = AlertStore(settings.routing.store_dir) if settings.routing.store_dir else None
        self.routing = AlertRoutingRunner(
            handler, bus.source(handler.inputs, "routing"), bus.sink(), self.delivery.sinks, store
        )
        self.worker = RetrainWorker(settings, topics, self.registry, bus, bus.sink(), task=self.task)
        self.requests = bus.source([topics.retrain], "retrain-worker")
        self.rollback = RollbackRunner(watcher_for(self.worker), bus.source([topics.metrics], "rollback"))
        self.updates = bus.source([topics.models], "serving")
        self.metrics = bus.source([topics.metrics], "demo-printer")
        self.notified = bus.source([topics.notifications], "demo-printer")
        self.accuracy = self.expected = float("nan")

    def run(self, batch_size: int) -> None:
        sc, server = self.scenario, self.server
        self.say(
            f"model {sc.model} v{server.version} trained on {sc.train_size} pre-drift rows; "
            f"streaming {sc.n_events} predictions (covariate shift in {', '.join(sc.shifted_features)} "
            f"at #{sc.covariate_shift_at}, concept change at #{sc.concept_change_at})"
        )
        next_report = 10_000
        self.delivery.start()
        while not self.sim.done():
            self._serve(batch_size)
            while self.processor.run_once():
                pass
            self.routing.run_once()
            self._say_notifications()
            self._retrain()
            self._hot_reload()
            if self.sim.index >= next_report or self.sim.done():
                self._progress()
                next_report += 10_000
        self.processor.drain()  # the stream has ended: what waits for the other input is joined
        self._hot_reload()
        while self.routing.run_once():
            pass
        self._say_notifications()
        self.client.close()
        if self.settings.routing.reports_dir:
            self._evidence(self.settings.routing.reports_dir)
        left = self.delivery.dispatcher.drain(10.0)
        self.delivery.stop()
        if left:
            log.warning("%d notification(s) not delivered by the end of the demo", left)

    def _evidence(self, reports_dir: str) -> None:
        """Each incident's evidence (Evidently reports, metric history), off the loop, at the end."""
        from driftline.app.evidence import write_evidence

        log_of, topics = self.bus.log, self.topics
        notes = map(decode_notification, (r.value for r in log_of(topics.notifications)))
        last = {n.incident_id: n for n in notes if isinstance(n, Incident)}
        scored = [decode(Scored, r.value) for r in log_of(topics.scored)]
        metrics = [decode(Metric, r.value) for r in log_of(topics.metrics)]
        for inc in last.values():
            for path in write_evidence(inc, scored, metrics, reports_dir):
                self.say(f"          evidence for {inc.incident_id}: {path}")

    def _say_notifications(self) -> None:
        for note in map(decode_notification, (r.value for r in self.notified.poll(1000))):
            if isinstance(note, Alert):
                a = note
                self.say(f"#{a.detected_at_index:>6}  ALERT {a.type:<16} v{a.model_version} {a.message}")
            elif isinstance(note, Incident):
                at = note.alerts[-1].detected_at_index if note.status == "firing" else self.sim.index
                self.say(f"#{at:>6}  INCIDENT {note.title} (rev {note.revision})")

    def _serve(self, batch_size: int) -> None:
        batch = self.sim.next_batch(batch_size)
        self.client.model_version = self.server.version
        for p in batch.predictions:
            self.client.emit(p)
        for lab in batch.labels:
            self.client.emit(lab)

    def _retrain(self) -> None:
        for rec in self.requests.poll(100):
            _say_outcome(self.worker.submit_record(rec), self.say)
        self.requests.commit()
        for out in self.worker.step(now=self.scenario.time_of(self.sim.index)) + self.rollback.run_once():
            _say_outcome(out, self.say)

    def _hot_reload(self) -> None:
        for rec in self.updates.poll(100):
            upd = decode(ModelUpdate, rec.value)
            if self.server.apply(upd, now=self.scenario.time_of(self.sim.index)):
                self.say(
                    f"#{self.sim.index:>6}  serving now uses {upd.model} v{upd.version} "
                    f"(was v{upd.previous_version})"
                )
        self.updates.commit()

    def _progress(self) -> None:
        latest = [decode_metric(r.value) for r in self.metrics.poll(1_000_000)]
        self.accuracy = next((v for n, v in reversed(latest) if n == "accuracy"), self.accuracy)
        self.expected = next((v for n, v in reversed(latest) if n == "expected_accuracy"), self.expected)
        self.say(
            f"#{self.sim.index:>6}  processed {self.processor.processed} events; rolling accuracy "
            f"{self.accuracy:.3f} (label-free estimate {self.expected:.3f})"
        )

    def report(self) -> dict[str, Any]:
        log_of, topics = self.bus.log, self.topics
        notes = [decode_notification(r.value) for r in log_of(topics.notifications)]
        return build_report(
            self.scenario,
            [decode(Scored, r.value) for r in log_of(topics.scored)],
            [n for n in notes if isinstance(n, Alert)],
            [decode(ModelUpdate, r.value) for r in log_of(topics.models)],
            self.worker.outcomes,
            events=len(log_of(topics.predictions)) + len(log_of(topics.labels)),
            dead_letters=len(log_of(topics.dlq)),
            task=self.task,
            notes=notes,
        )


def run_embedded(
    scenario: Scenario,
    settings: DriftlineSettings | None = None,
    *,
    registry_dir: str | None = None,
    batch_size: int = 500,
    echo: Printer | None = None,
    on_start: Callable[[EmbeddedLoop], Any] | None = None,
) -> DemoResult:
    """The closed loop in this process, no broker: deterministic for a seed. ``on_start`` sees the
    wired loop before it runs (``driftline demo --ui`` serves its page from the loop's bus)."""
    timeline: list[str] = []

    def say(line: str) -> None:
        timeline.append(line)
        if echo is not None:
            echo(line)

    started = time.perf_counter()
    registry_dir = registry_dir or tempfile.mkdtemp(prefix="driftline-registry-")
    loop = EmbeddedLoop(scenario, demo_settings(settings or DriftlineSettings()), registry_dir, say)
    if on_start is not None:
        on_start(loop)
    loop.run(batch_size)
    report = loop.report()
    report["wall_time_s"] = round(time.perf_counter() - started, 2)
    say(
        f"accuracy before drift {_pct(report['accuracy_before_drift'])}, after drift "
        f"{_pct(report['accuracy_after_drift'])}, after retrain {_pct(report['accuracy_after_retrain'])}; "
        f"model versions {report['model_versions']}; {report['wall_time_s']} s"
    )
    return DemoResult(report, timeline)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def decode_metric(raw: bytes) -> tuple[str, float]:
    m = decode(Metric, raw)
    return m.name, m.value


def _say_outcome(out: RetrainOutcome | None, say: Printer) -> None:
    if out is None:
        return
    m = out.metrics
    detail = (
        f" challenger acc {m['challenger_accuracy']:.3f} vs champion {m['champion_accuracy']:.3f} "
        f"on {int(m['n_validation'])} held-out events"
        if "challenger_accuracy" in m and "held-out" not in out.reason  # the numbers, unless said already
        else ""
    )
    say(
        f"#{max(out.trained_through_index, out.detected_at_index):>6}  RETRAIN {out.status}"
        f"{' -> v' + out.version if out.version else ''}: {out.reason}.{detail}"
    )


def build_report(
    scenario: Scenario,
    scored: list[Scored],
    delivered: list[Alert],
    updates: list[ModelUpdate],
    outcomes: list[RetrainOutcome] | None = None,
    *,
    events: int,
    dead_letters: int = 0,
    task: Task | None = None,
    notes: list[Notification] | None = None,
) -> dict[str, Any]:
    """The demo's figures from the topics; ``task``: which predictions were right; ``notes``: the
    notifications (incidents and retrain notifications are reported)."""
    task = task or get_task("binary")
    first_drift, idx = scenario.covariate_shift_at, np.array([s.index for s in scored])
    ok = task.correct([s.label for s in scored], [s.prediction.prediction for s in scored])
    version = np.array([s.prediction.model_version for s in scored])
    promoted = [u for u in updates if u.model == scenario.model and u.kind == "promoted"]
    last = promoted[-1].version if promoted else None
    first_version = scored[0].prediction.model_version if scored else "1"

    def acc(mask: np.ndarray) -> float | None:
        return round(float(ok[mask].mean()), 4) if mask.any() else None

    alerts: list[dict[str, Any]] = []
    for a in delivered:
        started = _drift_start(scenario, a)
        alerts.append(
            {
                "type": a.type,
                "feature": a.feature,
                "model_version": a.model_version,
                "detected_at": a.detected_at_index,
                "drift_started_at": started,
                "delay": None if started is None else a.detected_at_index - started,
                "statistic": a.statistic,
                "value": a.value,
                "threshold": a.threshold,
            }
        )
    return {
        "events": events,
        "predictions": scenario.n_events,
        "labelled": len(scored),
        "dead_letters": dead_letters,
        "alerts": alerts,
        "false_alarms_before_drift": sum(1 for a in alerts if a["detected_at"] < first_drift),
        "model_versions": sorted({first_version, *(u.version for u in promoted)}, key=int),
        "retrains": [
            {"status": o.status, "version": o.version, "reason": o.reason, **o.metrics}
            for o in (outcomes or [])
            if o.status != "skipped"
        ],
        "accuracy_before_drift": acc(idx < first_drift),
        "accuracy_after_covariate_shift": acc((idx >= first_drift) & (idx < scenario.concept_change_at)),
        "accuracy_after_drift": acc((idx >= scenario.concept_change_at) & (version == first_version)),
        "accuracy_after_retrain": acc(version == last) if last else None,
        **notification_report(notes or []),
    }


def _drift_start(scenario: Scenario, a: Alert) -> int | None:
    at = a.detected_at_index
    if a.type in ("data_drift", "prediction_drift"):
        if a.feature is not None and a.feature not in scenario.shifted_features:
            return None  # a feature the simulator never moved
        return scenario.covariate_shift_at if at >= scenario.covariate_shift_at else None
    for start in (scenario.concept_change_at, scenario.covariate_shift_at):
        if at >= start:
            return start
    return None
