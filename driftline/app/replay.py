"""``driftline replay``: a historical file of predictions and one of labels, through the monitor.

Both files (parquet, CSV or JSON lines, by extension) are read with pandas, their columns mapped per
the spec (:class:`~driftline.spec.Columns`), and their events interleaved in event-time order (stable:
rows with the same time keep their file order, predictions before labels). Embedded (the default),
they go through :class:`~driftline.app.embedded.Monitor` -- the processor core Kafka runs -- and the
alerts are printed in detection order: the same files give byte-identical output whatever their
format and whatever ``--batch``. With ``--bootstrap-servers`` the events are instead produced to the
input topics, a backfill for the processor running there (their ``event_time`` kept; the versions
they name are announced first, so the processor monitors them).
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from driftline.app.config_cli import load_settings
from driftline.app.embedded import Monitor, in_event_time_order
from driftline.app.embedded_columns import Encoded, encode_labels, encode_predictions, read_table
from driftline.config import DriftlineSettings, KafkaSettings
from driftline.contracts import encode
from driftline.errors import ConfigError, DriftlineError
from driftline.spec_file import CONFIG_ENV
from stream_processors.control.render import alert_line

__all__ = ["backfill", "replay_command"]

Progress = Callable[[int], None]


def replay_command(
    config: Annotated[
        str | None,
        typer.Option("--config", "-c", envvar=CONFIG_ENV, help="The spec file (models, columns...)."),
    ] = None,
    predictions: Annotated[
        str, typer.Option("--predictions", help="Predictions file: .parquet, .csv or .jsonl.")
    ] = "",
    labels: Annotated[str, typer.Option("--labels", help="Labels file: .parquet, .csv or .jsonl.")] = "",
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per alert, then one summary line.")
    ] = False,
    bootstrap_servers: Annotated[
        str | None,
        typer.Option(
            "--bootstrap-servers", "-b", help="Kafka HOST:PORT: produce the events there (a backfill)."
        ),
    ] = None,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Records per batch through the core.")] = 5000,
) -> None:
    """Replay a predictions file and a labels file in event-time order: print the alerts (embedded),
    or produce the events to Kafka as a backfill (--bootstrap-servers)."""
    if not predictions or not labels:
        raise typer.BadParameter("give both --predictions FILE and --labels FILE")
    try:
        settings = _load(config, bootstrap_servers)
        tables = read_table(predictions), read_table(labels)
        show = not as_json and sys.stderr.isatty()
        if bootstrap_servers:
            p = encode_predictions(tables[0], settings.topics.predictions, settings.models)
            lab = encode_labels(tables[1], settings.topics.labels, settings.models)
            with _bar(show, len(p.records) + len(lab.records), "producing") as step:
                report = backfill(settings, p, lab, step)
            typer.echo(json.dumps(report, sort_keys=True) if as_json else _backfill_text(report))
            if report["undelivered"]:
                raise typer.Exit(1)
            return
        monitor = Monitor(settings)
        with _bar(show, len(tables[0]) + len(tables[1]), "replaying") as step:
            result = monitor.replay(*tables, batch=batch, progress=step)
    except ConfigError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None
    for a in result.alerts:
        typer.echo(encode(a).decode() if as_json else alert_line(a))
    counts = monitor.counts()
    typer.echo(json.dumps({"summary": counts}, sort_keys=True) if as_json else _summary_text(counts))


def _load(config: str | None, bootstrap: str | None) -> DriftlineSettings:
    settings = load_settings(config)
    if not settings.models:
        raise ConfigError(f"{config or '(no spec file)'}: no models: declare them under models: (--config)")
    if bootstrap:
        kafka = settings.kafka.model_dump() if settings.kafka else {}
        settings = load_settings(config, kafka=KafkaSettings(**{**kafka, "bootstrap_servers": bootstrap}))
    return settings


@contextmanager
def _bar(show: bool, total: int, label: str) -> Iterator[Progress | None]:
    """A progress bar on stderr when it is a terminal (never in --json output)."""
    if not show:
        yield None
        return
    with typer.progressbar(length=total, label=label, file=sys.stderr) as bar:
        yield bar.update


def _summary_text(c: dict[str, Any]) -> str:
    why = "; ".join(f"{n} x {r}" for r, n in c["dead_letters_by_reason"].items())
    kinds = ", ".join(f"{n} {t}" for t, n in c["alerts_by_type"].items())
    undeclared = "; ".join(f"{m}: {', '.join(v)}" for m, v in c["undeclared_features"].items())
    return (
        f"replayed {c['predictions']} predictions and {c['labels']} labels: {c['joined']} joined, "
        f"{c['dead_letters']} dead letters{f' ({why})' if why else ''}, {c['alerts']} alerts"
        f"{f' ({kinds})' if kinds else ''}"
        + (f"; not declared, not monitored: {undeclared}" if undeclared else "")
    )


def backfill(
    settings: DriftlineSettings, predictions: Encoded, labels: Encoded, progress: Progress | None = None
) -> dict[str, Any]:
    """Produce the events to the input topics in event-time order, keyed by model, after announcing
    the (model, version) pairs they name (when the processor requires announcements). The records'
    Kafka timestamps are the time of producing, so the topics' retention does not delete a backfill
    of old events at once; the processor reads ``event_time`` from the events themselves."""
    from driftline.app.services import announce_on_kafka, prepare_kafka
    from driftline.kafka import KafkaSink

    if settings.kafka is None:
        raise ConfigError("a backfill needs --bootstrap-servers HOST:PORT")
    prepare_kafka(settings)
    announced = sorted(predictions.versions) if settings.monitor.require_announcement else []
    for model, version in announced:
        announce_on_kafka(settings, model, version)
    sink = KafkaSink(settings.kafka, block=True)
    sent: Counter[str] = Counter()
    for i, rec in enumerate(in_event_time_order(predictions, labels), 1):
        sink.send(rec.topic, rec.key, rec.value, None)
        sent[rec.topic] += 1
        if progress is not None and i % 1000 == 0:
            progress(1000)
    left = sink.flush(60.0)
    if left and sink.failed == 0:
        raise DriftlineError(f"{left} events still queued after 60 s: is the broker reachable?")
    return {
        "predictions": sent[settings.topics.predictions],
        "labels": sent[settings.topics.labels],
        "announced": [f"{m} v{v}" for m, v in announced],
        "undelivered": left + sink.failed,
        "topics": [settings.topics.predictions, settings.topics.labels],
    }


def _backfill_text(r: dict[str, Any]) -> str:
    told = f"; announced {', '.join(r['announced'])}" if r["announced"] else ""
    lost = f"; {r['undelivered']} NOT delivered" if r["undelivered"] else ""
    to = " and ".join(r["topics"])
    return f"produced {r['predictions']} predictions and {r['labels']} labels to {to}{told}{lost}"
