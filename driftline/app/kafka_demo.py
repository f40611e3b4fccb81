"""The closed loop on a real Kafka broker: every component a separate process, talking only
through topics (and the registry's store, shared like an artifact store).

The demo starts ``driftline process`` (data plane, batched confluent-kafka),
``driftline control-plane`` (faust-streaming alert routing) and ``driftline retrain-worker`` as
subprocesses, serves the simulated model in this process at a fixed rate, then builds the same
report as the embedded demo from what the topics hold. Each run uses its own topics and groups.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from confluent_kafka import ConsumerGroupState
from confluent_kafka.admin import AdminClient

from detectors.tasks import get_task
from driftline.app.alerts_cli import notification_report
from driftline.app.demo import DemoResult, bootstrap_registry, build_report, demo_settings
from driftline.app.pacing import Pacing
from driftline.app.services import collect_topic, prepare_kafka, run_simulation, wait_until
from driftline.config import DriftlineSettings, Topics
from driftline.contracts import ModelUpdate, Scored, alerts_in, decode, decode_notification
from driftline.errors import DriftlineError
from driftline.registry import ModelRegistry, open_registry
from producers.simulator import Scenario
from retrain_worker.worker import RetrainOutcome

__all__ = ["run_kafka_demo", "Services"]


class Services:
    """The separate component processes of one run; stopped with SIGTERM (then SIGKILL)."""

    def __init__(
        self,
        settings: DriftlineSettings,
        run_id: str,
        registry_dir: str,
        workdir: Path,
        metrics_ports: Mapping[str, int] | None = None,
        paced: bool = False,
    ) -> None:
        """``metrics_ports``: component name -> the port its Prometheus /metrics is served on.
        ``paced``: a paced producer waits for the processor's and the control plane's commits at
        each tick, so the processor commits after every batch (else a batch that follows its last
        commit closely waits for its next empty poll, ~0.5 s) and the control plane every 0.1 s."""
        assert settings.kafka is not None
        self.kafka = settings.kafka
        self.workdir = workdir
        self.groups = {
            "process": f"driftline-processor-{run_id}",
            "control-plane": f"driftline-cp-{run_id}",
            "retrain-worker": f"driftline-retrain-worker-{run_id}",
        }
        # every setting (Kafka security included) through the environment, never on a command line
        env = {**os.environ, **settings.to_env()}
        self.env = env
        self.commands = {
            "process": ["process", "--group", self.groups["process"], "--state-dir", str(workdir / "state")],
            "control-plane": [
                "control-plane",
                "--app-id",
                self.groups["control-plane"],
                "--datadir",
                str(workdir / "faust"),
            ],
            "retrain-worker": [
                "retrain-worker",
                "--registry-dir",
                registry_dir,
                "--group",
                self.groups["retrain-worker"],
            ],
        }
        if paced:
            self.commands["process"] += ["--commit-interval", "0"]
            self.commands["control-plane"] += ["--commit-interval", "0.1"]
        for name, port in (metrics_ports or {}).items():
            self.commands[name] += ["--metrics-port", str(port)]
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def pacing(self, retrain_on: tuple[str, ...]) -> Pacing:
        """What a paced producer waits for: these services' groups."""
        g = self.groups
        return Pacing(g["process"], g["control-plane"], g["retrain-worker"], retrain_on=retrain_on)

    def start(self) -> None:
        for name, args in self.commands.items():
            log = open(self.workdir / f"{name}.log", "wb")  # noqa: SIM115 - closed with the process
            self.procs[name] = subprocess.Popen(
                [sys.executable, "-m", "driftline.app", *args],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def check(self) -> None:
        for name, p in self.procs.items():
            if p.poll() is not None:
                raise DriftlineError(f"{name} exited with {p.returncode}:\n{self.log_tail(name)}")

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.workdir / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until the processor's and the control plane's consumer groups are stable."""
        admin = AdminClient(self.kafka.client_config())
        wanted = [self.groups["process"], self.groups["control-plane"]]

        def stable() -> bool:
            self.check()
            futs = admin.describe_consumer_groups(wanted, request_timeout=5)
            try:
                return all(f.result().state == ConsumerGroupState.STABLE for f in futs.values())
            except Exception:
                return False

        if not wait_until(stable, timeout):
            raise DriftlineError(
                "component services did not join their consumer groups in time:\n"
                + "\n".join(f"--- {n}\n{self.log_tail(n)}" for n in self.procs)
            )

    def stop(self, timeout: float = 20.0) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for p in self.procs.values():
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def run_kafka_demo(
    scenario: Scenario,
    settings: DriftlineSettings,
    *,
    rate: float = 3000.0,
    registry_dir: str | None = None,
    echo: Callable[[str], None] | None = None,
    run_id: str | None = None,
    metrics_ports: Mapping[str, int] | None = None,
    pace: bool = False,
) -> DemoResult:
    """The closed loop on the broker of ``settings``; ``metrics_ports`` serves each component's
    Prometheus /metrics (component name -> port) while it runs."""
    run_id = run_id or uuid.uuid4().hex[:8]
    topics = Topics(**{k: f"{v}.{run_id}" for k, v in settings.topics.model_dump().items()})
    settings = demo_settings(settings).model_copy(update={"topics": topics})  # the processor gets the spec
    say = echo or (lambda line: None)
    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix=f"driftline-demo-{run_id}-"))
    registry_dir = registry_dir or str(workdir / "registry")
    registry = open_registry(settings.retrain, registry_dir)
    prepare_kafka(settings)
    bootstrap_registry(scenario, registry)
    say(
        f"Kafka mode at {settings.kafka.bootstrap_servers if settings.kafka else '?'}: topics *.{run_id}; "
        f"starting process, control-plane (faust) and retrain-worker"
    )
    services = Services(settings, run_id, registry_dir, workdir, metrics_ports, paced=pace)
    services.start()
    try:
        services.wait_ready()
        say(
            f"services ready after {time.perf_counter() - started:.1f} s; simulating {scenario.n_events} "
            f"predictions at {rate:.0f}/s"
        )

        def stop() -> bool:
            services.check()  # raises if a component died
            return False

        # paced: the scenario's event rate, held at each tick until the loop caught up
        pacing = services.pacing(settings.routing.retrain_on) if pace else None
        server = run_simulation(
            settings, scenario, registry_dir=registry_dir, rate=rate, stop=stop, pace=pacing
        )
        labels = len(collect_topic(settings, topics.labels))
        if not wait_until(lambda: len(collect_topic(settings, topics.scored)) >= labels, 60, 1.0):
            raise DriftlineError(
                "the processor did not catch up with the labels within 60 s:\n" + services.log_tail("process")
            )
        say(f"simulation done; serving v{server.version}; processor caught up ({labels} labels joined)")
        wait_until(lambda: _incidents_settled(settings), 30, 1.0)  # the control plane reads the last metrics
    finally:
        services.stop()
    report = _report_from_topics(settings, scenario, registry, labels)
    report["wall_time_s"] = round(time.perf_counter() - started, 2)
    report["run_id"] = run_id
    _say_summary(settings, report, say)
    return DemoResult(report, [], str(workdir))


def _incidents_settled(settings: DriftlineSettings) -> bool:
    """Every incident on the notifications topic has reached ``resolved``."""
    report = notification_report(
        [decode_notification(v) for v in collect_topic(settings, settings.topics.notifications)]
    )
    return bool(report["incidents"]) and all(i["status"] == "resolved" for i in report["incidents"])


def _report_from_topics(
    settings: DriftlineSettings, scenario: Scenario, registry: ModelRegistry, labels: int
) -> dict[str, Any]:
    """The embedded demo's report, from what this run's topics and registry hold."""
    topics = settings.topics
    outcomes = [
        RetrainOutcome(
            request_id=v.triggered_by or "",
            model=v.model,
            status="promoted" if v.stage != "rejected" else "rejected",
            reason="from registry",
            version=v.version,
            metrics=v.metrics,
        )
        for v in registry.versions(scenario.model)
        if v.triggered_by != "bootstrap"
    ]
    return build_report(
        scenario,
        [decode(Scored, v) for v in collect_topic(settings, topics.scored)],
        alerts_in(collect_topic(settings, topics.notifications)),
        [decode(ModelUpdate, v) for v in collect_topic(settings, topics.models)],
        outcomes,
        events=len(collect_topic(settings, topics.predictions)) + labels,
        dead_letters=len(collect_topic(settings, topics.dlq)),
        task=get_task(settings.monitor.task),
        notes=[decode_notification(v) for v in collect_topic(settings, topics.notifications)],
    )


def _say_summary(settings: DriftlineSettings, report: dict[str, Any], say: Callable[[str], None]) -> None:
    delivered = alerts_in(collect_topic(settings, settings.topics.notifications))
    for a in sorted(delivered, key=lambda a: a.detected_at_index):
        say(f"#{a.detected_at_index:>6}  ALERT {a.type:<16} v{a.model_version} {a.message}")
    for u in (decode(ModelUpdate, v) for v in collect_topic(settings, settings.topics.models)):
        if u.kind != "promoted":
            continue  # an announcement of the served version, not an update
        say(
            f"          model update: {u.model} v{u.version} (was v{u.previous_version}), "
            f"challenger acc {u.metrics.get('challenger_accuracy', float('nan')):.3f} vs champion "
            f"{u.metrics.get('champion_accuracy', float('nan')):.3f}"
        )
    say(
        f"accuracy before drift {report['accuracy_before_drift']}, "
        f"after drift {report['accuracy_after_drift']}, "
        f"after retrain {report['accuracy_after_retrain']}; versions {report['model_versions']}; "
        f"{report['wall_time_s']} s"
    )
