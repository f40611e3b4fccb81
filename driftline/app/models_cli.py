"""``driftline models register``: a model trained outside Driftline becomes a champion.

A model file -- joblib or pickle, with its own preprocessing if it has any (an sklearn ``Pipeline``)
-- is copied into the registry, its SHA-256 recorded, and made the champion of its model name: the
retrain worker refits and compares against it, serving loads it. From then on the file is loaded
only from the registry and only if its bytes still match the recorded digest.

A model file is code: loading a pickle can run anything. Register only files you trust (you built
them, or they came from a place you trust); Driftline checks that the file loads and has
``predict()`` before it registers it, which already loads it once.

    driftline models register credit-risk model.joblib --registry-dir .driftline/registry
    driftline models register credit-risk model.joblib --version 7 -b localhost:9092
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from driftline.app.cli import models_app
from driftline.app.config_cli import load_settings
from driftline.config import DriftlineSettings, KafkaSettings, RetrainSettings
from driftline.errors import DriftlineError
from driftline.registry import ModelVersion, open_registry

__all__ = ["models_register", "register_model"]


def register_model(
    name: str,
    artifact: str,
    *,
    registry_dir: str,
    version: str | None = None,
    retrain: RetrainSettings | None = None,
) -> ModelVersion:
    """Check that ``artifact`` loads as a model with ``predict()``, then register it as the champion
    of ``name`` in the registry at ``registry_dir`` (the backend ``retrain.registry`` names)."""
    import joblib

    path = Path(artifact)
    if not path.is_file():
        raise DriftlineError(f"{artifact!r} is not a file")
    try:
        model: Any = joblib.load(path)  # the user's own, trusted file (see the module docstring)
    except Exception as exc:
        hint = (
            " (is the module defining its classes importable? set PYTHONPATH)"
            if isinstance(exc, ModuleNotFoundError)
            else ""
        )
        raise DriftlineError(f"{artifact!r} does not load: {type(exc).__name__}: {exc}{hint}") from None
    if not callable(getattr(model, "predict", None)):
        raise DriftlineError(f"{artifact!r} holds a {type(model).__name__}, not a model with predict()")
    registry: Any = open_registry(retrain or RetrainSettings(), registry_dir)  # both backends have it
    return registry.register_artifact(name, path, version=version)


@models_app.command("register")
def models_register(
    name: Annotated[str, typer.Argument(help="Model name, as predictions carry it.")],
    artifact: Annotated[str, typer.Argument(help="A joblib or pickle file you trust (loading runs code).")],
    version: Annotated[
        str | None, typer.Option("--version", help="Version number (default: the next one).")
    ] = None,
    registry_dir: Annotated[
        str | None, typer.Option(help="Model registry directory (default: retrain.registry_dir).")
    ] = None,
    bootstrap_servers: Annotated[
        str | None,
        typer.Option(
            "--bootstrap-servers",
            "-b",
            envvar="DRIFTLINE_KAFKA__BOOTSTRAP_SERVERS",
            help="Kafka HOST:PORT: also announce the version on the models topic.",
        ),
    ] = None,
) -> None:
    """Register a model file as the champion of NAME (its SHA-256 recorded; serving loads only
    verified artifacts); with --bootstrap-servers also announce it, so the processor monitors it."""
    settings = _settings(bootstrap_servers)
    mv = register_model(
        name,
        artifact,
        registry_dir=registry_dir or settings.retrain.registry_dir,
        version=version,
        retrain=settings.retrain,
    )
    where = (
        mv.artifact_uri
        if mv.artifact_uri.startswith("models:/")
        else Path(mv.artifact_uri.removeprefix("file://")).parent.parent
    )
    typer.echo(
        f"registered {name} v{mv.version} as champion in {where} "
        f"(sha256 {mv.sha256[:16]}..., {mv.size} bytes)"
    )
    if bootstrap_servers:
        from driftline.app.services import announce_on_kafka, prepare_kafka

        prepare_kafka(settings)
        announce_on_kafka(settings, name, mv.version)
        typer.echo(f"announced {name} v{mv.version} on {settings.topics.models}")


def _settings(bootstrap: str | None) -> DriftlineSettings:
    """The settings of the global ``--config`` spec and the environment, with ``bootstrap`` over them."""
    base = load_settings()
    if not bootstrap:
        return base
    kafka = base.kafka.model_dump() if base.kafka else {}
    return load_settings(kafka=KafkaSettings(**{**kafka, "bootstrap_servers": bootstrap}))
