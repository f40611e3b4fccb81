"""``driftline alerts list|tail|show ID|ack ID|silence MATCHER --for DURATION``: what on-call was told.

Reads the notifications topic (with ``--bootstrap-servers`` / ``DRIFTLINE_KAFKA__BOOTSTRAP_SERVERS``)
or the embedded control plane's store (``--store DIR``, ``routing.store_dir``); an ack or a silence
goes where the control plane reads it: the alert-actions topic, or the store.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from typing import Annotated, Any, Literal

import typer

from driftline.app.config_cli import load_settings
from driftline.config import KafkaSettings
from driftline.contracts import (
    Alert,
    AlertAction,
    Incident,
    Notification,
    decode,
    decode_notification,
    encode,
)
from driftline.errors import DriftlineError, InvalidEvent
from stream_processors.control.actions import Mutes, labels_of, parse_duration, parse_matcher
from stream_processors.control.render import alert_line, iso, notification_text
from stream_processors.control.store import AlertStore

__all__ = ["alerts_app", "notification_report"]

alerts_app = typer.Typer(no_args_is_help=True, help="Alerts and incidents: list, follow, show, ack, silence.")

Bootstrap = Annotated[
    str | None,
    typer.Option(
        "--bootstrap-servers", "-b", envvar="DRIFTLINE_KAFKA__BOOTSTRAP_SERVERS", help="Kafka HOST:PORT."
    ),
]
Store = Annotated[
    str | None,
    typer.Option(
        "--store", envvar="DRIFTLINE_ROUTING__STORE_DIR", help="The embedded control plane's store."
    ),
]
AsJson = Annotated[bool, typer.Option("--json", help="One JSON object per line.")]


class _Backend:
    """The notifications and actions, from Kafka or from an embedded store."""

    def __init__(self, bootstrap: str | None, store: str | None) -> None:
        base = load_settings()  # the spec file of driftline --config / DRIFTLINE_CONFIG
        if bootstrap:
            kafka = base.kafka.model_dump() if base.kafka else {}
            base = load_settings(kafka=KafkaSettings(**{**kafka, "bootstrap_servers": bootstrap}))
        self.settings = base
        directory = store or base.routing.store_dir
        if base.kafka is None and not directory:
            raise DriftlineError(
                "no alerts to read: pass --bootstrap-servers (Kafka) or --store DIR (the embedded "
                "control plane's routing.store_dir)"
            )
        self.store = AlertStore(directory) if base.kafka is None else None

    def notes(self) -> list[Notification]:
        if self.store is not None:
            raw = self.store.notifications()
        else:
            from driftline.app.services import collect_topic

            raw = collect_topic(self.settings, self.settings.topics.notifications)
        out = []
        for value in raw:
            try:
                out.append(decode_notification(value))
            except InvalidEvent:
                continue  # not for on-call
        return out

    def actions(self) -> list[AlertAction]:
        if self.store is not None:
            return self.store.actions()
        from driftline.app.services import collect_topic

        return [
            decode(AlertAction, v) for v in collect_topic(self.settings, self.settings.topics.alert_actions)
        ]

    def send(self, action: AlertAction) -> None:
        if self.store is not None:
            self.store.add_action(action)
            return
        from driftline.app.services import prepare_kafka
        from driftline.kafka import KafkaSink

        assert self.settings.kafka is not None
        prepare_kafka(self.settings)
        sink = KafkaSink(self.settings.kafka, block=True)
        sink.send(self.settings.topics.alert_actions, action.target.encode()[:256], encode(action), None)
        if sink.flush(30.0):
            raise DriftlineError(f"the {action.action} was not delivered to Kafka; is the broker reachable?")


def _incidents(notes: list[Notification]) -> dict[str, Incident]:
    """Each incident at its newest revision, in the order they started."""
    last: dict[str, Incident] = {}
    for n in notes:
        if isinstance(n, Incident) and n.revision >= getattr(last.get(n.incident_id), "revision", 0):
            last[n.incident_id] = n
    return dict(sorted(last.items(), key=lambda kv: (kv[1].started_at, kv[1].started_at_index)))


def notification_report(notes: list[Notification]) -> dict[str, Any]:
    """Each incident as it stands at its last revision, and the retrain notifications on-call got."""
    incidents = []
    for inc in sorted(_incidents(notes).values(), key=lambda i: (i.started_at_index, i.kind)):
        moved = next((a for a in inc.alerts if a.before is not None and a.after is not None), None)
        incidents.append(
            {
                "id": inc.incident_id,
                "kind": inc.kind,
                "model_version": inc.model_version,
                "severity": inc.severity,
                "status": inc.status,
                "features": inc.features,
                "alerts": len(inc.alert_ids),
                "started_at": inc.started_at_index,
                "updates": inc.revision,
                **({"before": moved.before, "after": moved.after} if moved else {}),
            }
        )
    outcomes = [n for n in notes if not isinstance(n, Alert | Incident)]
    return {
        "incidents": incidents,
        "retrain_notifications": [
            {"status": o.status, "version": o.version, "reason": o.reason} for o in outcomes
        ],
    }


def _mutes(actions: list[AlertAction]) -> Mutes:
    mutes = Mutes({})
    for a in actions:
        mutes.apply(a)
    return mutes


def _state(inc: Incident, mutes: Mutes) -> str:
    labels = labels_of(inc) or {}
    if inc.status == "resolved":
        return "resolved"
    if mutes.silenced(labels, time.time()) is not None:
        return "silenced"
    return "acked" if mutes.acked(inc.incident_id) else "firing"


@alerts_app.command("list")
def list_(bootstrap_servers: Bootstrap = None, store: Store = None, as_json: AsJson = False) -> None:
    """Incidents, newest revision each: state, severity, model and version, what, since when."""
    backend = _Backend(bootstrap_servers, store)
    mutes = _mutes(backend.actions())
    for inc in _incidents(backend.notes()).values():
        state = _state(inc, mutes)
        if as_json:
            row = {"id": inc.incident_id, "state": state, "severity": inc.severity, "title": inc.title}
            typer.echo(
                json.dumps({**row, "model": inc.model, "version": inc.model_version, "kind": inc.kind})
            )
            continue
        typer.echo(
            f"{inc.incident_id}  {state:<8} {inc.severity:<8} {inc.model} v{inc.model_version:<4} "
            f"{inc.kind:<11} {', '.join(inc.features) or '-':<20} since {iso(inc.started_at)} "
            f"(#{inc.started_at_index}), {len(inc.alert_ids)} alert(s)"
        )


@alerts_app.command()
def tail(
    bootstrap_servers: Bootstrap = None,
    store: Store = None,
    lines: Annotated[int, typer.Option("-n", help="Notifications to show first.")] = 20,
    follow: Annotated[
        bool, typer.Option("--follow/--no-follow", "-f", help="Keep printing new ones.")
    ] = False,
    interval: Annotated[float, typer.Option(help="Seconds between reads with --follow.")] = 2.0,
) -> None:
    """The newest notifications (alerts, incident updates, retrain outcomes), as they arrive."""
    backend = _Backend(bootstrap_servers, store)
    shown = 0
    notes = backend.notes()
    for n in notes[-lines:] if lines > 0 else []:
        typer.echo(_one_line(n))
    shown = len(notes)
    while follow:
        time.sleep(interval)
        notes = backend.notes()
        for n in notes[shown:]:
            typer.echo(_one_line(n))
        shown = len(notes)


def _one_line(n: Notification) -> str:
    if isinstance(n, Incident):
        return f"INCIDENT {n.incident_id} rev {n.revision}: {n.title}"
    if isinstance(n, Alert):
        return f"ALERT {n.alert_id}: {alert_line(n)}"
    return f"RETRAIN {notification_text(n)}"


@alerts_app.command()
def show(incident_id: str, bootstrap_servers: Bootstrap = None, store: Store = None) -> None:
    """One incident in full: title, state, every alert line, runbook and evidence."""
    backend = _Backend(bootstrap_servers, store)
    found = _incidents(backend.notes()).get(incident_id)
    if found is None:
        raise DriftlineError(f"no incident {incident_id!r}: `driftline alerts list` shows their ids")
    typer.echo(f"{notification_text(found)}\nstate: {_state(found, _mutes(backend.actions()))}")


def _act(
    backend: _Backend,
    action: Literal["ack", "silence"],
    target: str,
    until: float | None,
    say: Callable[[str], Any],
) -> None:
    act = AlertAction(
        action_id=uuid.uuid4().hex[:16],
        action=action,
        target=target,
        until=until,
        created_at=time.time(),
    )
    backend.send(act)
    say(f"{action} {target}{f' until {iso(until)}' if until else ''} ({act.action_id})")


@alerts_app.command()
def ack(incident_id: str, bootstrap_servers: Bootstrap = None, store: Store = None) -> None:
    """Acknowledge an incident: its updates stop reaching the sinks; its resolution still does."""
    _act(_Backend(bootstrap_servers, store), "ack", incident_id, None, typer.echo)


@alerts_app.command()
def silence(
    matcher: str,
    duration: Annotated[str, typer.Option("--for", help="How long: 30m, 2h, 1d.")],
    bootstrap_servers: Bootstrap = None,
    store: Store = None,
) -> None:
    """Silence matching incidents and alerts (``model=churn,kind=data_drift``) for a while."""
    parse_matcher(matcher)
    until = time.time() + parse_duration(duration)
    _act(_Backend(bootstrap_servers, store), "silence", matcher, until, typer.echo)


@alerts_app.command()
def report(
    incident_id: Annotated[str, typer.Argument(help="The incident ('' with --follow: every one).")] = "",
    reports_dir: Annotated[str, typer.Option(help="Where to write (default: routing.reports_dir).")] = "",
    bootstrap_servers: Bootstrap = None,
    follow: Annotated[
        bool,
        typer.Option(
            "--follow/--no-follow", "-f", help="Keep writing each incident's evidence as it changes."
        ),
    ] = False,
    interval: Annotated[float, typer.Option(help="Seconds between reads with --follow.")] = 5.0,
) -> None:
    """Write incidents' evidence from the scored and metrics topics (Kafka): the Evidently data-drift
    report (HTML, JSON) or the metric history. With --follow, a reporter process: every incident's
    evidence is written when it opens and again at each revision, off the hot path. The embedded demo
    writes its own."""
    backend = _Backend(bootstrap_servers, None)
    if backend.store is not None:
        raise DriftlineError(
            "report reads Kafka: pass --bootstrap-servers (the embedded demo writes its evidence)"
        )
    if not incident_id and not follow:
        raise DriftlineError("name an incident (`driftline alerts list` shows their ids), or pass --follow")
    where = reports_dir or backend.settings.routing.reports_dir or ".driftline/reports"
    written: dict[str, int] = {}  # incident id -> revision whose evidence is written
    while True:
        for path in write_new_evidence(backend, where, written, only=incident_id or None):
            typer.echo(path)
        if not follow:
            if incident_id not in written:
                raise DriftlineError(f"no incident {incident_id!r}: `driftline alerts list` shows their ids")
            return
        time.sleep(interval)


def write_new_evidence(
    backend: Any, where: str, written: dict[str, int], only: str | None = None
) -> list[str]:
    """Writes the evidence of every incident (or ``only`` one) whose newest revision has none yet;
    ``written`` remembers what is done. The topics are read only when something is to be written."""
    todo = [
        inc
        for inc in _incidents(backend.notes()).values()
        if (only is None or inc.incident_id == only) and written.get(inc.incident_id) != inc.revision
    ]
    if not todo:
        return []
    from driftline.app.evidence import write_evidence
    from driftline.app.services import collect_topic
    from driftline.contracts import Metric, Scored

    topics = backend.settings.topics
    scored = [decode(Scored, v) for v in collect_topic(backend.settings, topics.scored)]
    metrics = [decode(Metric, v) for v in collect_topic(backend.settings, topics.metrics)]
    paths: list[str] = []
    for inc in todo:
        paths += write_evidence(inc, scored, metrics, where)
        written[inc.incident_id] = inc.revision
    return paths
