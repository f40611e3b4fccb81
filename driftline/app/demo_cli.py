"""``driftline demo``: the whole closed loop, in process (default) or on a Kafka broker."""

from __future__ import annotations

import json
import logging
from typing import Annotated, Any

import typer

from driftline.app.cli import (
    Bootstrap,
    Events,
    RegistryDir,
    Seed,
    UiHost,
    UiPort,
    _scenario,
    _settings,
    _stop_flag,
    app,
)
from driftline.app.metrics_export import MetricsPort
from driftline.config import DriftlineSettings

__all__ = ["demo"]


@app.command()
def demo(
    seed: Seed = 7,
    events: Events = 60_000,
    as_json: Annotated[bool, typer.Option("--json", help="End the output with one JSON line.")] = False,
    bootstrap_servers: Bootstrap = None,
    rate: Annotated[float, typer.Option(help="Kafka mode: predictions per second.")] = 3000.0,
    paced: Annotated[
        bool,
        typer.Option(
            "--paced/--unpaced",
            help="Kafka mode: the scenario's event times, held at each 500-event tick until the loop "
            "caught up -- the embedded run's versions at the same events, at any --rate.",
        ),
    ] = False,
    registry_dir: RegistryDir = None,
    ui: Annotated[
        bool, typer.Option("--ui/--no-ui", help="Serve the dashboard page while the demo runs, and after it.")
    ] = False,
    ui_port: UiPort = 8765,
    ui_host: UiHost = "127.0.0.1",
    metrics_port: MetricsPort = None,
) -> None:
    """Run the whole closed loop: simulate, monitor, alert, retrain, hot-reload, recover."""
    scenario = _scenario(seed, events)
    settings = _settings(bootstrap_servers)
    # the demo prints every routed alert in its timeline: the log sink's copies would only repeat them
    logging.getLogger("stream_processors.control.sinks").setLevel(logging.ERROR)
    servers: list[Any] = []
    if settings.kafka is None:
        result = _embedded_demo(
            scenario, settings, registry_dir, metrics_port, servers, (ui, ui_host, ui_port)
        )
    else:
        from driftline.app.kafka_demo import run_kafka_demo

        if ui:
            from driftline.app import ui as page

            feed = page.KafkaFeed(settings, None, settings.routing.reports_dir)
            servers.append(page.serve(feed, ui_host, ui_port, say=typer.echo))
        result = run_kafka_demo(
            scenario, settings, rate=rate, registry_dir=registry_dir, echo=typer.echo, pace=paced
        )
    if as_json:
        typer.echo(json.dumps(result.report, separators=(",", ":")))
    if servers:
        from driftline.app.ui import hold

        stop = _stop_flag()
        hold(servers[0], lambda: stop[0], typer.echo)


def _embedded_demo(
    scenario: Any,
    settings: DriftlineSettings,
    registry_dir: str | None,
    metrics_port: int | None,
    servers: list[Any],
    ui: tuple[bool, str, int],
) -> Any:
    """The demo in process; its /metrics and its dashboard page served as it starts, if asked."""
    from driftline.app.demo import run_embedded

    def on_start(loop: Any) -> None:
        port = settings.observability.metrics_port if metrics_port is None else metrics_port
        if port:  # embedded: the processor's metrics, and the incidents and retrains it led to
            from driftline.app.metrics_export import serve_demo

            typer.echo(f"metrics: {serve_demo(loop, port, settings.observability.metrics_host)[1].url}")
        if ui[0]:
            from driftline.app import ui as page

            feed = page.BusFeed(loop.bus, loop.topics, loop.registry, settings.routing.reports_dir)
            servers.append(page.serve(feed, ui[1], ui[2], say=typer.echo))

    return run_embedded(scenario, settings, registry_dir=registry_dir, echo=typer.echo, on_start=on_start)
