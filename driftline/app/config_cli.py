"""``driftline config check FILE`` and ``driftline config show``: a spec file judged before anything runs.

``check`` loads the file as every command would (the ``DRIFTLINE_*`` environment over it), imports each
model's ``retrain.trainer``, reads the header of each ``reference.path`` and builds the processor core
(which reads the reference data and checks the detectors), so a mistake fails here -- exit 2 and the
key path -- and not at the first event. ``show`` prints the effective settings as YAML, secrets masked.

The global ``driftline --config FILE`` (``DRIFTLINE_CONFIG``) names the spec file for every command;
:func:`global_config` is how a command reads it.
"""

from __future__ import annotations

import json
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from driftline.config import DriftlineSettings
from driftline.errors import ConfigError
from driftline.settings_base import redact
from driftline.spec import ModelSpec
from driftline.spec_file import CONFIG_ENV

__all__ = [
    "config_app",
    "global_config",
    "use_global_config",
    "load_settings",
    "model_summary",
    "reference_columns",
]

config_app = typer.Typer(no_args_is_help=True, help="The spec file: check it, show the effective settings.")


_GLOBAL: ContextVar[str | None] = ContextVar("driftline_global_config", default=None)


def use_global_config(ctx: typer.Context, config: str | None) -> None:
    """Called by ``driftline``'s own options: ``config`` holds for the commands of this invocation
    (and is forgotten when it ends, so a test's next invocation starts clean)."""
    token = _GLOBAL.set(config)
    ctx.call_on_close(lambda: _GLOBAL.reset(token))


def global_config() -> str | None:
    """The ``--config`` given to ``driftline`` itself (None: ``DRIFTLINE_CONFIG`` or no file)."""
    return _GLOBAL.get()


def load_settings(config: str | None = None, **overrides: Any) -> DriftlineSettings:
    """Settings from ``config``, else the global ``--config``, else ``$DRIFTLINE_CONFIG``."""
    return DriftlineSettings.load(config or global_config(), **overrides)


def reference_columns(path: str) -> list[str]:
    """The column names of a reference file, from its header only."""
    p = Path(path)
    suffix = p.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            return list(pq.read_schema(p).names)
        if suffix == ".csv":
            import pandas as pd

            return [str(c) for c in pd.read_csv(p, nrows=0).columns]
        if suffix in (".jsonl", ".ndjson", ".json"):
            with p.open() as f:
                first = next((line for line in f if line.strip()), "{}")
            row = json.loads(first)
            return list(row) if isinstance(row, dict) else []
    except Exception as exc:  # unreadable: say what the file is and why
        raise ConfigError(f"{p.name}: cannot read its header: {type(exc).__name__}: {exc}") from None
    raise ConfigError(f"{p.name}: unknown file type {suffix!r} (use .parquet, .csv or .jsonl)")


def _check_model(name: str, spec: ModelSpec) -> str:
    """Import the trainer, read the reference header; the one-line summary of the model."""
    if spec.retrain.trainer:
        from retrain_worker.recipe import load_trainer

        load_trainer(name, spec.retrain)
    ref = spec.reference
    if ref is not None and ref.path is not None:
        key = f"models.{name}.reference.path"
        try:
            have = reference_columns(ref.path)
        except ConfigError as exc:
            raise ConfigError(f"{key}: {exc}") from None
        missing = [f for f in spec.kinds() if f not in have]
        if missing:
            raise ConfigError(
                f"{key}: {Path(ref.path).name} has no column for the declared feature(s) "
                f"{', '.join(map(repr, missing))} (its columns: {', '.join(have)})"
            )
    return model_summary(name, spec)


def model_summary(name: str, spec: ModelSpec) -> str:
    kinds = list(spec.kinds().values())
    parts = [
        f"{kinds.count('numeric')} numeric",
        f"{kinds.count('categorical')} categorical",
        f"{len(spec.ignored())} ignored",
    ]
    ref = spec.reference
    if ref is None:
        reference = "the first monitor.reference_size predictions"
    elif ref.path is not None:
        reference = Path(ref.path).name
    elif ref.first is not None:
        reference = f"the first {ref.first} predictions"
    else:
        reference = f"version {ref.version}'s"
    line = f"{name}: {spec.task}; features {', '.join(parts)}; reference {reference}"
    if spec.segments:
        line += f"; segments {', '.join(spec.segments)}"
    return line + (f"; trainer {spec.retrain.trainer}" if spec.retrain.trainer else "")


@config_app.command("check")
def check(file: Annotated[str, typer.Argument(help="The spec file (YAML).")]) -> None:
    """Load FILE as every command would, import each trainer, read each reference file's header and
    build the processor core: exit 0 with one line per model, or exit 2 with what to fix."""
    from stream_processors.core.processor import ProcessorCore

    try:
        settings = DriftlineSettings.load(file)
        lines = [_check_model(name, spec) for name, spec in settings.models.items()]
        ProcessorCore(settings.monitor, settings.topics, models=settings.models)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    for line in lines or [f"{Path(file).name}: no models declared (models:); the other sections are valid"]:
        typer.echo(line)


@config_app.command("show")
def show(
    config: Annotated[
        str | None,
        typer.Option("--config", "-c", help=f"The spec file (default: driftline --config, ${CONFIG_ENV})."),
    ] = None,
) -> None:
    """The effective settings (spec file, then the DRIFTLINE_* environment over it) as YAML, secrets
    masked."""
    try:
        settings = load_settings(config)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    # SecretStr values dump masked; redact also masks any other secret-looking key (a URL's token)
    data = redact(settings.model_dump(mode="json", exclude_none=True))
    typer.echo(yaml.safe_dump(data, sort_keys=False, default_flow_style=False).rstrip())
