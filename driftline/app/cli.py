"""``driftline`` -- one command per job. Thin: parse, build settings, call library code."""

from __future__ import annotations

import logging
import os
import runpy
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from driftline.app.alerts_cli import alerts_app
from driftline.app.config_cli import config_app, load_settings, use_global_config
from driftline.app.metrics_export import MetricsPort, exporting
from driftline.app.replay import replay_command
from driftline.config import DriftlineSettings, KafkaSettings
from driftline.errors import DriftlineError
from driftline.spec_file import CONFIG_ENV

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Driftline: streaming monitoring for ML models (drift, alerts, closed-loop retraining).",
)
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks (print a table; --json for one JSON line).")
app.add_typer(bench_app, name="bench")
models_app = typer.Typer(no_args_is_help=True, help="Models and versions the processor monitors.")
app.add_typer(models_app, name="models")
app.add_typer(alerts_app, name="alerts")
app.add_typer(config_app, name="config")


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[
        str | None,
        typer.Option(
            "--config",
            "-c",
            envvar=CONFIG_ENV,
            help="The spec file (YAML: models and any settings section); DRIFTLINE_* variables override it.",
        ),
    ] = None,
) -> None:
    """Driftline: streaming monitoring for ML models (drift, alerts, closed-loop retraining)."""
    use_global_config(ctx, config)  # every command's settings read it (config_cli.load_settings)


Bootstrap = Annotated[
    str | None,
    typer.Option(
        "--bootstrap-servers",
        "-b",
        envvar="DRIFTLINE_KAFKA__BOOTSTRAP_SERVERS",
        help="Kafka HOST:PORT; without it the demo runs embedded (no broker).",
    ),
]
Seed = Annotated[int, typer.Option(help="Random seed: the same seed gives the same run.")]
Events = Annotated[int, typer.Option("--events", help="Predictions to simulate.")]
RegistryDir = Annotated[str | None, typer.Option(help="Model registry directory (default: a temporary one).")]
UiPort = Annotated[int, typer.Option("--ui-port", help="The dashboard page's port (0: a free one).")]
UiHost = Annotated[
    str, typer.Option("--ui-host", help="The page's address (no authentication: keep it local).")
]


def _settings(bootstrap: str | None) -> DriftlineSettings:
    """The spec file (``driftline --config``), the environment, then ``--bootstrap-servers``."""
    overrides: dict[str, Any] = {}
    if bootstrap:
        base = load_settings()
        kafka = base.kafka.model_dump() if base.kafka else {}
        overrides["kafka"] = KafkaSettings(**{**kafka, "bootstrap_servers": bootstrap})
    return load_settings(**overrides)


def _scenario(seed: int, events: int) -> Any:
    from producers.simulator import Scenario

    if events < 6000:
        raise typer.BadParameter("--events must be at least 6000 (reference, drift and recovery phases)")
    return Scenario(
        seed=seed, n_events=events, covariate_shift_at=events // 3, concept_change_at=events * 7 // 12
    )


def _stop_flag() -> list[bool]:
    flag = [False]

    def handler(signum: int, frame: Any) -> None:
        flag[0] = True

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return flag


@app.command()
def simulate(
    bootstrap_servers: Bootstrap = None,
    seed: Seed = 7,
    events: Events = 60_000,
    rate: Annotated[float, typer.Option(help="Predictions per second.")] = 3000.0,
    registry_dir: Annotated[
        str | None, typer.Option(help="Model registry directory (default: retrain.registry_dir).")
    ] = None,
) -> None:
    """Serve the simulated model on Kafka (bootstraps version 1 into an empty registry)."""
    from driftline.app.demo import bootstrap_registry
    from driftline.app.services import prepare_kafka, run_simulation
    from driftline.registry import open_registry

    settings = _settings(bootstrap_servers)
    scenario = _scenario(seed, events)
    prepare_kafka(settings)
    registry_dir = registry_dir or settings.retrain.registry_dir
    bootstrap_registry(scenario, open_registry(settings.retrain, registry_dir))
    stop = _stop_flag()
    server = run_simulation(settings, scenario, registry_dir=registry_dir, rate=rate, stop=lambda: stop[0])
    typer.echo(f"simulated {scenario.n_events} predictions; serving {scenario.model} v{server.version}")


@app.command()
def process(
    bootstrap_servers: Bootstrap = None,
    group: Annotated[str, typer.Option(help="Consumer group.")] = "driftline-processor",
    batch_size: Annotated[int, typer.Option(help="Records per batch.")] = 5000,
    state_dir: Annotated[
        str | None,
        typer.Option(
            help="Checkpoint directory, state per partition survives restarts ('' = none; default state.dir)."
        ),
    ] = None,
    checkpoint_interval: Annotated[
        float,
        typer.Option(min=0.0, help="Seconds between checkpoints (also on a rebalance and a clean stop)."),
    ] = 10.0,
    commit_interval: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="Seconds between commits: outputs become visible to read_committed consumers, input offsets "
            "are committed (one Kafka transaction).",
        ),
    ] = 1.0,
    transactional_id: Annotated[
        str | None,
        typer.Option(
            help="Kafka transactional.id: the same across this instance's restarts, its own per instance "
            "(default: state.transactional_id, else <group>-<hostname>)."
        ),
    ] = None,
    metrics_port: MetricsPort = None,
) -> None:
    """Run the stream processor (data plane) on Kafka: join, metrics, drift, alerts."""
    from driftline.app.services import prepare_kafka, run_processor

    settings = _settings(bootstrap_servers)
    prepare_kafka(settings)
    stop = _stop_flag()
    state_dir = settings.state.dir if state_dir is None else state_dir
    with exporting(settings, "process", metrics_port) as exporter:
        run_processor(
            settings,
            lambda: stop[0],
            group=group,
            batch_size=batch_size,
            state_dir=state_dir or None,
            checkpoint_interval=checkpoint_interval,
            commit_interval=commit_interval,
            transactional_id=transactional_id,
            exporter=exporter,
        )


@app.command("control-plane")
def control_plane(
    bootstrap_servers: Bootstrap = None,
    app_id: Annotated[str, typer.Option(help="faust application id.")] = "driftline-control-plane",
    datadir: Annotated[str, typer.Option(help="faust data directory.")] = ".driftline/faust",
    commit_interval: Annotated[
        float, typer.Option(min=0.01, help="Seconds between offset commits (faust's broker_commit_interval).")
    ] = 2.8,
    metrics_port: MetricsPort = None,
) -> None:
    """Run alert routing (dedup, cooldown, retrain trigger) as a faust-streaming worker."""
    import faust

    from driftline.app.services import prepare_kafka
    from stream_processors.control.faust_app import create_app, prepare_changelog

    settings = _settings(bootstrap_servers)
    with exporting(settings, "control-plane", metrics_port) as exporter:
        # bad routing settings fail here, before Kafka
        fapp = create_app(
            settings, app_id=app_id, datadir=datadir, exporter=exporter, commit_interval=commit_interval
        )
        prepare_kafka(settings)
        assert settings.kafka is not None  # prepare_kafka says so otherwise
        prepare_changelog(settings.kafka, app_id)  # before faust: a broker away at start-up is waited for
        faust.Worker(fapp, loglevel="WARNING", quiet=True).execute_from_commandline()


@app.command("retrain-worker")
def retrain_worker(
    bootstrap_servers: Bootstrap = None,
    registry_dir: Annotated[
        str | None, typer.Option(help="Model registry directory (default: retrain.registry_dir).")
    ] = None,
    group: Annotated[str, typer.Option(help="Consumer group.")] = "driftline-retrain-worker",
    metrics_port: MetricsPort = None,
) -> None:
    """Run the retraining worker on Kafka: retrain requests in, validated model versions out."""
    from driftline.app.services import prepare_kafka, run_retrain_worker

    settings = _settings(bootstrap_servers)
    prepare_kafka(settings)
    stop = _stop_flag()
    with exporting(settings, "retrain-worker", metrics_port) as exporter:
        run_retrain_worker(
            settings, lambda: stop[0], registry_dir=registry_dir, group=group, exporter=exporter
        )


@app.command("ui")
def ui_command(
    bootstrap_servers: Bootstrap = None,
    store: Annotated[
        str | None,
        typer.Option("--store", help="Embedded mode: the control plane's store (routing.store_dir)."),
    ] = None,
    registry: Annotated[
        str | None, typer.Option("--registry", help="Model registry directory (versions).")
    ] = None,
    reports_dir: Annotated[
        str | None, typer.Option(help="Evidence reports to link (default: routing.reports_dir).")
    ] = None,
    port: Annotated[int, typer.Option(help="Port (0: a free one).")] = 8765,
    host: Annotated[str, typer.Option(help="Address (no authentication: keep it local).")] = "127.0.0.1",
) -> None:
    """Serve the dashboard page: models, versions and lineage, quality, drift per feature, incidents."""
    from driftline.app.ui import hold, serve, standalone_feed

    settings = _settings(bootstrap_servers)
    reports = settings.routing.reports_dir if reports_dir is None else reports_dir
    feed = standalone_feed(settings, store, registry or settings.retrain.registry_dir, reports)
    stop = _stop_flag()
    hold(serve(feed, host, port, say=lambda _: None), lambda: stop[0], typer.echo)


@models_app.command("announce")
def models_announce(
    name: Annotated[str, typer.Argument(help="Model name, as predictions carry it.")],
    version: Annotated[str, typer.Argument(help="Model version, as predictions carry it.")],
    bootstrap_servers: Bootstrap = None,
) -> None:
    """Announce a model version registered outside Driftline: the processor monitors only announced
    versions (predictions for others are dead-lettered). Serving does not switch to it."""
    import re

    from driftline.app.services import announce_on_kafka, prepare_kafka
    from driftline.contracts import SAFE_NAME_PATTERN

    for what, value in (("NAME", name), ("VERSION", version)):
        if not re.match(SAFE_NAME_PATTERN, value) or "\n" in value:
            raise typer.BadParameter(f"{value!r}: 1-128 of A-Z a-z 0-9 . _ -, no '..'", param_hint=what)
    settings = _settings(bootstrap_servers)
    prepare_kafka(settings)
    announce_on_kafka(settings, name, version)
    typer.echo(f"announced {name} v{version} on {settings.topics.models}")


app.command("replay")(replay_command)


def _run_benchmark(name: str, args: list[str]) -> None:
    script = Path(__file__).resolve().parents[2] / "benchmarks" / f"{name}.py"
    if not script.exists():
        raise DriftlineError(f"{script} not found: benchmarks ship with the source tree, run from a clone")
    main = runpy.run_path(str(script), run_name="driftline_bench")["main"]
    raise typer.Exit(main(args))


@bench_app.command("detection", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench_detection(ctx: typer.Context) -> None:
    """Driftline's detectors next to river's defaults on seeded streams (args go to the script)."""
    _run_benchmark("detection", list(ctx.args))


@bench_app.command("pipeline", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench_pipeline(
    ctx: typer.Context,
    bootstrap_servers: Annotated[
        str | None,
        typer.Option("--bootstrap-servers", "-b", help="Kafka HOST:PORT (default: start a local one)."),
    ] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Also print the results as one JSON line.")
    ] = False,
    quick: Annotated[bool, typer.Option("--quick", help="Small sizes: a few minutes.")] = False,
) -> None:
    """Raw consume, decode, the core and driftline process as ratios to the raw consumer, in one run;
    latency at two rates, RSS over a long run (other args go to the script: --repeat, --only, --no-kafka)."""
    args = list(ctx.args) + (["--bootstrap-servers", bootstrap_servers] if bootstrap_servers else [])
    _run_benchmark("pipeline", args + ["--json"] * json_out + ["--quick"] * quick)


@bench_app.command("faults", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def bench_faults(ctx: typer.Context) -> None:
    """kill -9, rebalance and broker restart of the processor vs a clean run (args go to the script)."""
    _run_benchmark("faults", list(ctx.args))


def main() -> None:
    logging.basicConfig(
        level=os.environ.get("DRIFTLINE_LOG_LEVEL", "WARNING"),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        app()
    except DriftlineError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from None


from driftline.app import demo_cli as _demo_cli  # noqa: E402, F401 -- adds "driftline demo"
from driftline.app import models_cli as _models_cli  # noqa: E402, F401 -- adds "driftline models register"
