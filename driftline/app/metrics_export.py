"""Prometheus metrics for the CLI's long-running commands: the ``--metrics-port`` option, the
exporter's lifetime around a command, and the embedded demo's wiring.

Each command builds its own :class:`~driftline.observability.Exporter` (one registry per process)
and serves it while it runs; ``--metrics-port`` overrides ``observability.metrics_port``
(``DRIFTLINE_OBSERVABILITY__METRICS_PORT``), 0 serves nothing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from driftline.config import DriftlineSettings
from driftline.contracts import RetrainOutcome
from driftline.notifications import Incident, decode_notification
from driftline.observability import Exporter, MetricsServer
from driftline.transport import Record

__all__ = ["MetricsPort", "DemoObserver", "ProcessorObserver", "exporting"]

log = logging.getLogger(__name__)

MetricsPort = Annotated[
    int | None,
    typer.Option(
        "--metrics-port",
        min=0,
        max=65535,
        help="Serve Prometheus /metrics on this port (0: off; default: observability.metrics_port).",
    ),
]


@contextmanager
def exporting(
    settings: DriftlineSettings, component: str, port: int | None = None
) -> Iterator[Exporter | None]:
    """An exporter for ``component`` served on ``port`` (None: the setting) while the block runs;
    None (nothing built, nothing served) when the port is 0."""
    obs = settings.observability
    port = obs.metrics_port if port is None else port
    if not port:
        yield None
        return
    exporter = Exporter(component, max_versions=settings.monitor.max_versions, topics=settings.topics)
    server = exporter.serve(port, obs.metrics_host)
    log.info("%s: Prometheus metrics on %s", component, server.url)
    try:
        yield exporter
    finally:
        server.close()


class ProcessorObserver:
    """The processor's observer: the exporter's batch, checkpoint and lag hooks, plus the core's drift
    levels read every ``every_s`` seconds (a pass over its versions; never per record)."""

    def __init__(self, exporter: Exporter, core: Any, every_s: float = 5.0) -> None:
        self.exporter, self.core, self.every_s = exporter, core, every_s
        self._read_at = -float("inf")

    def observe_batch(self, records: Sequence[Record], out: Any) -> None:
        self.exporter.observe_batch(records, out)
        now = time.monotonic()
        if now - self._read_at >= self.every_s:
            self._read_at = now
            self.exporter.observe_drift_levels(self.core.drift_levels())

    def observe_checkpoint(self, seconds: float) -> None:
        self.exporter.observe_checkpoint(seconds)

    def observe_lag(self, lag: dict[tuple[str, int], int]) -> None:
        self.exporter.observe_lag(lag)


class DemoObserver(ProcessorObserver):
    """The embedded demo's processor observer: the exporter's batch hooks, plus the incidents and
    retrain outcomes read off the demo bus's notifications topic (the demo's routing and worker run
    in the same loop, so their outputs are there after every step)."""

    def __init__(self, exporter: Exporter, core: Any, notifications: Any) -> None:
        super().__init__(exporter, core, every_s=0.0)  # the demo's steps are simulated time
        self.notifications = notifications

    def observe_batch(self, records: Sequence[Record], out: Any) -> None:
        super().observe_batch(records, out)
        notes = [decode_notification(r.value) for r in self.notifications.poll(10_000)]
        self.exporter.observe_incidents(n for n in notes if isinstance(n, Incident))
        self.exporter.observe_retrains(n for n in notes if isinstance(n, RetrainOutcome))


def serve_demo(loop: Any, port: int, host: str = "127.0.0.1") -> tuple[Exporter, MetricsServer]:
    """Export the embedded demo ``loop``'s metrics (:class:`driftline.app.demo.EmbeddedLoop`, before
    it runs) on ``host``:``port`` (0: a free port); the caller closes the server."""
    settings = loop.settings
    exporter = Exporter("demo", max_versions=settings.monitor.max_versions, topics=loop.topics)
    notes = loop.bus.source([loop.topics.notifications], "metrics-export")
    loop.processor.observer = DemoObserver(exporter, loop.processor.core, notes)
    return exporter, exporter.serve(port, host)
