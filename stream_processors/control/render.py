"""What a person reads: the text, Slack Block Kit and Alertmanager v2 forms of a notification.

Pure functions of a notification (an :class:`~driftline.contracts.Incident`, an
:class:`~driftline.contracts.Alert` or a :class:`~driftline.contracts.RetrainOutcome`), so every
sink says the same thing and the payloads are snapshot-tested. Every alert line names the model,
version, type, segment, when (ISO time and event index), the statistic with its threshold and
p-value, and what moved by how much.

>>> from driftline.contracts import Alert, Window
>>> w = Window(start_index=20000, end_index=21000, start_time=1.7e9, end_time=1.7e9 + 60, n=1000)
>>> a = Alert(alert_id="x", type="data_drift", model="churn", model_version="1", feature="income",
...           statistic="ks_p_value", value=3e-98, threshold=1.4e-4, p_value=3e-98, window=w,
...           detected_at_index=20999, detected_at_time=1.7e9 + 60, effect=0.8, direction="up",
...           message="income drifted (mean +0.80 sd)")
>>> print(alert_line(a))
data_drift churn v1 income [segment: all] at 2023-11-14T22:14:20Z (event #20999): ks_p_value=3e-98 \
(threshold 0.00014, p=3e-98), effect +0.8 up -- income drifted (mean +0.80 sd)
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from driftline.contracts import Alert, Incident, Notification, RetrainOutcome

__all__ = [
    "alert_line",
    "alertmanager_alerts",
    "incident_summary",
    "incident_title",
    "iso",
    "notification_text",
    "slack_payload",
]

_KIND = {"data_drift": "data drift", "performance": "model performance"}
_EMOJI = {"critical": ":red_circle:", "warning": ":large_orange_circle:", "info": ":large_blue_circle:"}


def iso(t: float | None) -> str:
    """Event time as ISO 8601 UTC (``Z``), to the second."""
    if t is None:
        return "-"
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.3g}"


def alert_line(a: Alert) -> str:
    """One alert, in one line, with everything on-call needs to judge it."""
    seg = ",".join(f"{k}={v}" for k, v in sorted((a.segment or {}).items())) or "all"
    moved = ""
    if a.before is not None and a.after is not None:
        moved = f", {a.before:.3f} -> {a.after:.3f}"
    if a.effect is not None:
        moved += f", effect {a.effect:+.3g}{f' {a.direction}' if a.direction else ''}"
    p = f", p={_num(a.p_value)}" if a.p_value is not None else ""
    return (
        f"{a.type} {a.model} v{a.model_version} {a.feature or '-'} [segment: {seg}] at "
        f"{iso(a.detected_at_time)} (event #{a.detected_at_index}): {a.statistic}={_num(a.value)} "
        f"(threshold {_num(a.threshold)}{p}){moved} -- {a.message}"
    )


def incident_title(inc: Incident) -> str:
    what = _KIND[inc.kind] + (f": {', '.join(inc.features)}" if inc.features else "")
    moved = next((a for a in inc.alerts if a.before is not None and a.after is not None), None)
    if moved is not None and moved.before is not None and moved.after is not None:
        name = moved.statistic.removeprefix("rolling_")
        if moved.type == "concept_drift":  # the error stream's mean, named as its alert names it
            name = "mean absolute error" if moved.message.startswith("mean absolute") else "error rate"
        what += f": {name} {moved.before:.3f} -> {moved.after:.3f}"
    state = "RESOLVED " if inc.status == "resolved" else ""
    segment = next((a.segment for a in inc.alerts if a.segment), None)
    where = f" [{', '.join(f'{k}={v}' for k, v in sorted(segment.items()))}]" if segment else ""
    return f"{state}[{inc.severity.upper()}] {inc.model} v{inc.model_version}{where} {what}"


def incident_summary(inc: Incident) -> str:
    """Since when, whether labels confirm harm, and one line per alert (the newest kept)."""
    head = f"since {iso(inc.started_at)} (event #{inc.started_at_index}), {len(inc.alert_ids)} alert(s)"
    if inc.kind == "performance":
        head += "; labels confirm harm" if inc.labels_confirm else "; not yet confirmed by labels"
    if inc.status == "resolved":
        head += f"; resolved at {iso(inc.resolved_at)}"
    return "\n".join([head, *(alert_line(a) for a in inc.alerts)])


def _outcome_text(o: RetrainOutcome) -> str:
    if o.status == "rolled_back":  # ``version`` is the one taken out of service
        return f"ROLLED BACK {o.model} v{o.version}: {o.reason} ({o.request_id})"
    version = f" -> v{o.version}" if o.version else ""
    status = "in shadow" if o.status == "shadow" else o.status
    return f"retrain of {o.model} {status}{version}: {o.reason} (request {o.request_id})"


def notification_text(note: Notification) -> str:
    """Plain text (log lines, the generic webhook's ``text``)."""
    if isinstance(note, Incident):
        return f"{note.title}\n{note.summary}\nrunbook: {note.runbook_url}" + "".join(
            f"\nevidence: {e}" for e in note.evidence
        )
    if isinstance(note, RetrainOutcome):
        return _outcome_text(note)
    return alert_line(note)


def slack_payload(note: Notification) -> dict[str, Any]:
    """A Slack incoming-webhook message in Block Kit: the title (model, version, severity), what moved
    and by how much, since when, how sure, the evidence and the runbook."""
    if not isinstance(note, Incident):
        text = notification_text(note)
        return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}
    icon = ":white_check_mark:" if note.status == "resolved" else _EMOJI[note.severity]
    title = f"{icon} {note.title}"
    lines = note.summary.split("\n")
    links = [f"<{note.runbook_url}|runbook>"] + [f"<{e}|evidence>" for e in note.evidence]
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        {"type": "section", "text": {"type": "mrkdwn", "text": lines[0]}},
        *({"type": "section", "text": {"type": "mrkdwn", "text": f"• {line}"[:3000]}} for line in lines[1:]),
        {
            "type": "context",
            "elements": [
                {"type": "mrkdwn", "text": " | ".join(links)},
                {"type": "mrkdwn", "text": f"incident {note.incident_id} rev {note.revision}"},
            ],
        },
    ]
    return {"text": title, "blocks": blocks}


def alertmanager_alerts(note: Incident, generator_url: str = "") -> list[dict[str, Any]]:
    """The incident as Alertmanager v2 alerts (``POST /api/v2/alerts``): labels identify it (the
    fingerprint's parts, so Alertmanager groups and deduplicates it), a resolved one carries
    ``endsAt``."""
    alert: dict[str, Any] = {
        "labels": {
            "alertname": f"Driftline{''.join(p.title() for p in note.kind.split('_'))}",
            "model": note.model,
            "model_version": note.model_version,
            "kind": note.kind,
            "severity": note.severity,
            "incident_id": note.incident_id,
        },
        "annotations": {
            "summary": note.title,
            "description": note.summary,
            "runbook_url": note.runbook_url,
            "features": ",".join(note.features),
            **({"evidence": " ".join(note.evidence)} if note.evidence else {}),
        },
        "startsAt": iso(note.started_at),
        "generatorURL": generator_url or note.runbook_url,
    }
    if note.status == "resolved":
        alert["endsAt"] = iso(note.resolved_at)
    return [alert]
