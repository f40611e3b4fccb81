"""The closed loop killed, or cut off from its broker: the control plane and the retrain worker
SIGKILLed, or the broker restarted under all three services, next to a clean run.

Used by ``benchmarks/faults.py`` (the ``loop`` scenario) and ``tests/integration/test_faults_loop_kafka.py``.

* :func:`make_loop_stream` -- the demo's world (``producers.simulator``): a churn model served as version 1
  on a stream with a covariate shift and then a concept change, predictions and labels as records; produced
  once, up front, so that every run reads the same input (serving's hot reload is not part of it: a served
  model that changed mid-stream would make the input differ between runs).
* :class:`LoopRun` -- one run over that input: ``driftline process``, ``driftline control-plane`` (faust)
  and ``driftline retrain-worker`` as child processes with topics (all but the two inputs), consumer groups
  and a model registry of their own; a process that exits by itself is a crash, noted and started again.
* :func:`collect_loop` -- what the run left: alerts, notifications, retrain requests, model updates, the
  registry's versions and recorded outcomes.

A kill lands where the loop is at work: the control plane right after its first notification (before its
offsets are committed), again right after it restarts (while it recovers its table), and late in the
stream; the retrain worker right after the first retrain request (pending, training or registering) and
right after a version is registered (before or after its announcement). Broker restarts
(:func:`broker_loop`) land mid-stream and soon after the first retrain request.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from confluent_kafka import Consumer, TopicPartition
from fault_kit import caught_up
from fault_run import OPTIONS, Child, ScoredWatch

from detectors.tasks import get_task
from driftline.app.demo import bootstrap_registry
from driftline.app.services import announce_on_kafka, prepare_kafka
from driftline.config import DriftlineSettings, Topics
from driftline.contracts import (
    Alert,
    ModelUpdate,
    RetrainOutcome,
    RetrainRequest,
    decode,
    decode_notification,
    encode,
)
from driftline.kafka import KafkaSink
from driftline.kafka_readers import KafkaWindowReader
from driftline.kafka_retry import Backoff, RetriesExhausted
from driftline.registry import LocalModelRegistry
from producers.serving import ModelServer
from producers.simulator import Scenario, Simulator
from stream_processors.control.routing import AlertRouter

__all__ = [
    "LoopOutputs",
    "LoopRun",
    "collect_loop",
    "compare_loop",
    "broker_loop",
    "kill_loop",
    "loop_settings",
    "make_loop_stream",
    "produce_loop",
]

LoopRecord = tuple[str, bytes, bytes, float]  # (input "p"/"l", key, value, timestamp)


def make_loop_stream(n: int, seed: int, registry_dir: Path) -> tuple[Scenario, list[LoopRecord], int]:
    """``n`` predictions of the demo's churn model (shift at 1/3, concept change at 0.58), 500 per second
    of event time ending now, and their labels; returns the scenario, the records and the label count."""
    scenario = Scenario(
        n_events=n,
        covariate_shift_at=n // 3,
        concept_change_at=int(n * 0.58),
        seed=seed,
        events_per_second=500.0,
        start_time=time.time() - n / 500.0 - 10.0,
    )
    registry = LocalModelRegistry(registry_dir)
    bootstrap_registry(scenario, registry)
    sim = Simulator(scenario, ModelServer(scenario.model, registry, get_task("binary")))
    key, out, labels = scenario.model.encode(), [], 0
    for batch in sim.batches(500):
        out += [("p", key, encode(p), p.event_time) for p in batch.predictions]
        out += [("l", key, encode(lab), lab.event_time) for lab in batch.labels]
        labels += len(batch.labels)
    return scenario, out, labels


def loop_settings(inputs: DriftlineSettings) -> DriftlineSettings:
    """``inputs`` with every topic but the predictions and labels of its own (models too: each run's
    worker announces its own versions)."""
    run = uuid.uuid4().hex[:8]
    keep = ("predictions", "labels")
    names = {k: v if k in keep else f"{v}.{run}" for k, v in inputs.topics.model_dump().items()}
    return inputs.model_copy(update={"topics": Topics(**names)})


def produce_loop(settings: DriftlineSettings, records: list[LoopRecord]) -> None:
    """Create the topics and write the stream, each record stamped with its event time."""
    assert settings.kafka is not None
    prepare_kafka(settings)
    sink = KafkaSink(settings.kafka, block=True)
    topic = {"p": settings.topics.predictions, "l": settings.topics.labels}
    for kind, key, value, ts in records:
        sink.send(topic[kind], key, value, ts)
    if sink.flush(60):
        raise RuntimeError("the loop's input stream was not fully delivered")


def ends(settings: DriftlineSettings, topic: str, group: str | None = None) -> dict[int, int]:
    """Per partition of ``topic``: its end offset, or (``group``) the offset the group committed."""
    assert settings.kafka is not None
    c = Consumer({**settings.kafka.client_config(), "group.id": group or "driftline-faults-ends"})
    try:
        parts = [TopicPartition(topic, p) for p in c.list_topics(topic, timeout=10).topics[topic].partitions]
        if group is not None:
            return {tp.partition: tp.offset for tp in c.committed(parts, timeout=10)}
        return {tp.partition: c.get_watermark_offsets(tp, timeout=10)[1] for tp in parts}
    finally:
        c.close()


def ends_retried(settings: DriftlineSettings, topic: str, group: str | None = None) -> dict[int, int]:
    """:func:`ends`, retried while a restarted broker settles its leaders and coordinators."""
    return Backoff(attempts=10).call(lambda: ends(settings, topic, group), f"the ends of {topic}")


@dataclass
class LoopRun:
    """The three services of one run; :meth:`kill` SIGKILLs one and starts it again."""

    name: str
    inputs: DriftlineSettings
    scenario: Scenario
    input_ends: dict[tuple[str, int], int]
    labels: int
    dir: Path
    timeout: float = 300.0
    started: int = 0
    crashes: list[str] = field(default_factory=list)
    points: list[str] = field(default_factory=list)
    children: dict[str, Child] = field(default_factory=dict)
    every: list[Child] = field(default_factory=list)
    behind: str = ""  # what :meth:`done` last found unfinished

    def __post_init__(self) -> None:
        self.settings = loop_settings(self.inputs)
        self.registry_dir = self.dir / "registry"
        (self.dir / "state").mkdir(parents=True)
        bootstrap_registry(
            self.scenario, LocalModelRegistry(self.registry_dir)
        )  # v1, as trained for the stream
        prepare_kafka(self.settings)
        announce_on_kafka(self.settings, self.scenario.model, "1")
        tag = uuid.uuid4().hex[:8]
        g = self.groups = {"process": f"loop-p-{tag}", "control-plane": f"loop-cp-{tag}"}
        g["retrain-worker"] = f"loop-w-{tag}"
        # the fault suite's processor options: small batches and frequent commits, so that progress shows
        # as the stream is processed and a fault aimed at a point of it lands there
        options = [x for k, v in OPTIONS.items() for x in (f"--{k.replace('_', '-')}", str(v))]
        self.args = {
            "process": ["process", "--group", g["process"], "--state-dir", str(self.dir / "state"), *options],
            "control-plane": [
                "control-plane",
                "--app-id",
                g["control-plane"],
                "--datadir",
                str(self.dir / "faust"),
            ],
            "retrain-worker": [
                "retrain-worker",
                "--group",
                g["retrain-worker"],
                "--registry-dir",
                str(self.registry_dir),
            ],
        }
        self.watch = ScoredWatch(self.settings)
        assert self.settings.kafka is not None
        self._probe = Consumer({**self.settings.kafka.client_config(), "group.id": "driftline-faults-probe"})

    def start(self, name: str) -> Child:
        self.started += 1
        log = self.dir / f"{name}-{self.started}.log"
        self.children[name] = child = Child(self.settings, self.args[name], log)
        self.every.append(child)
        return child

    def start_all(self) -> None:
        for name in self.args:
            self.start(name)

    def progress(self) -> float:
        return self.watch.distinct / max(1, self.labels)

    def count(self, topic: str) -> int:
        """Records in ``topic`` so far (retried while a restarted broker settles its leaders)."""

        def count() -> int:
            parts = self._probe.list_topics(topic, timeout=10).topics[topic].partitions
            return sum(
                self._probe.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in parts
            )

        return Backoff(attempts=10).call(count, f"counting the records of {topic}")

    def wait(self, cond: Callable[[], bool], what: str, interval: float = 0.05) -> None:
        """Wait for ``cond``; a service that exits meanwhile is a crash, started again."""
        deadline = time.monotonic() + self.timeout
        while not cond():
            for name, child in list(self.children.items()):
                if not child.alive():
                    self.crashes.append(f"{name} exit {child.proc.returncode}: {child.last_words()}")
                    self.start(name)
            if time.monotonic() > deadline:
                why = f"{self.name}: no {what} after {self.timeout:.0f} s ({self.behind}; logs in {self.dir})"
                raise TimeoutError(why)
            time.sleep(interval)

    def kill(self, name: str, when: str, cond: Callable[[], bool], jitter: float) -> None:
        """Once ``cond`` holds, wait ``jitter`` seconds, SIGKILL ``name`` and start it again."""
        self.wait(cond, when, interval=0.1)
        time.sleep(jitter)
        self.children[name].kill()
        self.points.append(f"{name} {when} +{jitter:.1f}s (at {self.progress():.0%})")
        self.start(name)

    def done(self) -> bool:
        """Every input processed, every alert and retrain request committed by its consumer."""
        s = self.settings
        if not caught_up(s, self.groups["process"], self.dir / "state", self.input_ends):
            self.behind = "process"
            return False
        assert s.kafka is not None
        reader = KafkaWindowReader(s.kafka)
        inputs = (
            (s.topics.alerts, "control-plane"),
            (s.topics.metrics, "control-plane"),  # it resolves incidents: read to the end, it is up
            (s.topics.retrain, "retrain-worker"),
        )
        for topic, group in inputs:
            end: dict[int, int] = {}  # past the last record: a transaction's commit marker is never consumed
            try:
                records = reader.read_since(topic, 0.0, -1)
            except RetriesExhausted as exc:  # cut short by the broker: not known to be done
                self.behind = f"reading {topic}: {exc}"
                return False
            for r in records:
                end[r.partition] = max(end.get(r.partition, 0), r.offset + 1)
            done = ends_retried(s, topic, self.groups[group])
            if any(done.get(p, -1) < e for p, e in end.items()):
                self.behind = f"{group}: committed {done}, ends {end}"
                return False
        return True

    def finish(self, quiet: float = 3.0) -> LoopOutputs:
        """Until :meth:`done` holds and no output topic grew for ``quiet`` seconds; then stop cleanly."""
        t = self.settings.topics
        outs = (t.alerts, t.notifications, t.retrain, t.models)
        seen: list[Any] = [None, time.monotonic()]

        def settled() -> bool:
            now = [self.count(x) for x in outs]
            if now != seen[0]:
                seen[:] = [now, time.monotonic()]
            return time.monotonic() - seen[1] >= quiet and self.done()

        self.wait(settled, "end of the loop's work", interval=0.5)
        for name, child in self.children.items():
            if (rc := child.stop()) != 0:
                self.crashes.append(f"{name} clean stop exited {rc}: {child.last_words()}")
        self.close()
        return collect_loop(self.settings, self.registry_dir, self.scenario.model)

    def close(self) -> None:
        for child in self.every:
            child.kill()
        self.watch.close()
        self._probe.close()


@dataclass(frozen=True)
class LoopOutputs:
    alerts: list[str]  # alert ids in topic order (one partition: keyed by model)
    routed: tuple[list[str], list[str]]  # what an uninterrupted router makes of them: notified, retrain
    notified: list[str]  # alert ids on the notifications topic
    outcomes: list[tuple[str, str]]  # retrain outcomes notified (request id, status)
    requests: list[str]  # retrain request ids
    updates: list[tuple[str, str]]  # promoted model updates (version, triggered by)
    versions: list[tuple[str, str, str]]  # registry: (version, triggered by, stage), bootstrap excluded
    metrics: dict[str, dict[str, float]]  # registry: version -> its training metrics
    recorded: dict[str, str]  # registry: request id -> recorded status


def collect_loop(settings: DriftlineSettings, registry_dir: Path, model: str) -> LoopOutputs:
    assert settings.kafka is not None
    t, reader = settings.topics, KafkaWindowReader(settings.kafka)
    alert_recs = sorted(reader.read_since(t.alerts, 0.0, -1), key=lambda r: (r.partition, r.offset))
    router = AlertRouter(settings.routing)
    routed: tuple[list[str], list[str]] = ([], [])
    for r in alert_recs:
        decision = router.route(decode(Alert, r.value), at=(r.partition, r.offset))
        if decision.deliver:
            routed[0].append(decision.alert.alert_id)
        if decision.retrain is not None:
            routed[1].append(decision.retrain.request_id)
    notes = [decode_notification(r.value) for r in reader.read_since(t.notifications, 0.0, -1)]
    updates = [decode(ModelUpdate, r.value) for r in reader.read_since(t.models, 0.0, -1)]
    registry = LocalModelRegistry(registry_dir)
    versions = [v for v in registry.versions(model) if v.triggered_by != "bootstrap"]
    return LoopOutputs(
        alerts=[decode(Alert, r.value).alert_id for r in alert_recs],
        routed=routed,
        notified=[n.alert_id for n in notes if isinstance(n, Alert)],
        outcomes=[(n.request_id, n.status) for n in notes if isinstance(n, RetrainOutcome)],
        requests=[decode(RetrainRequest, r.value).request_id for r in reader.read_since(t.retrain, 0.0, -1)],
        updates=[(u.version, u.triggered_by or "") for u in updates if u.kind == "promoted"],
        versions=[(v.version, v.triggered_by or "", v.stage) for v in versions],
        metrics={v.version: dict(v.metrics) for v in versions},
        recorded={rid: o.get("status", "?") for rid, o in registry.outcomes(model).items()},
    )


def kill_loop(run: LoopRun, rng: np.random.Generator) -> None:
    """The control plane and the retrain worker SIGKILLed where the loop is at work (module docstring)."""
    t = run.settings.topics
    registry, model = LocalModelRegistry(run.registry_dir), run.scenario.model
    cp, worker = "control-plane", "retrain-worker"
    late = float(rng.uniform(0.85, 0.95))
    plan: list[tuple[str, str, Callable[[], bool], float]] = [
        (cp, "after the 1st notification", lambda: run.count(t.notifications) > 0, rng.uniform(0, 0.5)),
        (cp, "right after its restart", lambda: True, rng.uniform(1.0, 4.0)),
        (worker, "after the 1st retrain request", lambda: run.count(t.retrain) > 0, rng.uniform(0, 1.0)),
        (
            worker,
            "after a version is registered",
            lambda: len(registry.versions(model)) > 1,
            rng.uniform(0, 0.3),
        ),
        (cp, f"late in the stream ({late:.0%})", lambda: run.progress() >= late, 0.0),
    ]
    for name, when, cond, jitter in plan:
        run.kill(name, when, cond, float(jitter))


def broker_loop(run: LoopRun, rng: np.random.Generator, restart: Callable[[float], float]) -> None:
    """The broker stopped for 5 s and started again twice: mid-stream (the processor scoring, the control
    plane routing the first alerts) and soon after the first retrain request (the worker waiting for data,
    training or publishing). ``restart(down_s)`` stops the broker, starts it again and returns the seconds
    it was away; every service is left running (one that exits is a crash: :meth:`LoopRun.wait` starts
    it again)."""
    retrain = run.settings.topics.retrain
    mid = float(rng.uniform(0.3, 0.7))
    plan: list[tuple[str, Callable[[], bool], float]] = [
        (f"mid-stream ({mid:.0%})", lambda: run.progress() >= mid, 0.0),
        ("after the 1st retrain request", lambda: run.count(retrain) > 0, float(rng.uniform(0.0, 1.0))),
    ]
    for when, cond, jitter in plan:
        run.wait(cond, when, interval=0.05)
        time.sleep(jitter)
        at = run.progress()
        away = restart(5.0)
        run.points.append(f"broker {when} +{jitter:.1f}s (at {at:.0%}): away {away:.0f} s")


def compare_loop(out: LoopOutputs, ref: LoopOutputs) -> dict[str, Any]:
    """A run's loop outputs next to the uninterrupted reference's (raw counts, then distinct)."""
    triggered = [trig for _, trig, _ in out.versions]
    return {
        "alerts": f"{len(out.alerts)} / {len(set(out.alerts))}",
        "notifications": f"{len(out.notified)} / {len(set(out.notified))}",
        "retrain_requests": f"{len(out.requests)} / {len(set(out.requests))}",
        "promoted_updates": f"{len(out.updates)} / {len(set(out.updates))}",
        "versions": [f"v{v} {stage} <- {trig[:8]}" for v, trig, stage in out.versions],
        "versions_twice": len(triggered) - len(set(triggered)),
        "same_alerts": set(out.alerts) == set(ref.alerts),
        "same_notifications": set(out.notified) == set(ref.notified),
        "same_retrain_requests": set(out.requests) == set(ref.requests),
        "same_versions": out.versions == ref.versions and set(out.updates) == set(ref.updates),
        "same_outcomes": out.recorded == ref.recorded,
        "as_routed": set(out.notified) == set(out.routed[0]) and set(out.requests) == set(out.routed[1]),
        "same_training_metrics": out.metrics == ref.metrics,
        "retrain_outcome_notices": len(out.outcomes),
    }
