"""Incidents and the notifications topic: what on-call is told, in one contract per kind.

``topics.notifications`` holds routed :class:`~driftline.contracts.Alert`\\ s, :class:`Incident`\\ s
(alerts grouped, with a lifecycle) and :class:`~driftline.contracts.RetrainOutcome`\\ s; a reader
tells them apart by decoding (:func:`decode_notification`). Re-exported by :mod:`driftline.contracts`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, TypeAlias

from driftline.contracts import Alert, RetrainOutcome, _Event, decode
from driftline.errors import InvalidEvent

__all__ = ["AlertAction", "Incident", "IncidentKind", "Notification", "alerts_in", "decode_notification"]

IncidentKind = Literal["data_drift", "performance"]


class Incident(_Event, frozen=True, kw_only=True):
    """Alerts of one model version and one kind of harm, grouped, with a lifecycle (the control
    plane's :mod:`~stream_processors.control.incidents`). Published on ``topics.notifications`` at
    every change (opened, a new alert joined, resolved); ``notification_id`` is the idempotency key
    every sink delivers it with, ``revision`` counts the changes of one incident."""

    incident_id: str
    fingerprint: str  # stable for (model, version, kind): the Alertmanager / Slack grouping key
    kind: IncidentKind
    status: Literal["firing", "resolved"]
    model: str
    model_version: str
    severity: Literal["info", "warning", "critical"]
    title: str
    summary: str
    revision: int
    notification_id: str
    started_at: float  # event time of the first alert
    started_at_index: int
    updated_at: float
    resolved_at: float | None = None
    features: list[str] = []
    alerts: list[Alert] = []  # the newest alerts that joined (bounded), oldest first
    alert_ids: list[str] = []
    runbook_url: str = ""
    evidence: list[str] = []  # links: reports, metric history
    labels_confirm: bool = False  # a labelled-stream alert (error rate, metric floor) is part of it


class AlertAction(_Event, frozen=True, kw_only=True):
    """What on-call did (``driftline alerts ack|silence``), on ``topics.alert_actions``: the control
    plane keeps it in its routing table. ``ack``: ``target`` is an incident id, whose updates stop
    reaching the sinks (its resolution still does); ``silence``: ``target`` is a matcher
    (``model=churn,kind=data_drift``; keys model, model_version, kind, severity, feature) and no
    matching incident reaches the sinks until ``until`` (unix time). The notifications topic keeps
    everything either way."""

    action_id: str
    action: Literal["ack", "silence"]
    target: str
    until: float | None = None
    by: str = ""
    created_at: float = 0.0


Notification: TypeAlias = Alert | Incident | RetrainOutcome
"""What ``topics.notifications`` holds: routed alerts, incidents, retrain outcomes."""


def decode_notification(raw: bytes) -> Notification:
    """One record of ``topics.notifications``: a routed alert, an incident, or a retrain outcome.

    >>> from driftline.contracts import encode
    >>> o = RetrainOutcome(request_id="r", model="m", status="failed", reason="trainer raised")
    >>> type(decode_notification(encode(o))).__name__
    'RetrainOutcome'
    """
    try:
        return decode(Alert, raw)
    except InvalidEvent as as_alert:
        try:
            return decode(Incident, raw)
        except InvalidEvent:
            pass
        try:
            return decode(RetrainOutcome, raw)
        except InvalidEvent:
            raise as_alert from None


def alerts_in(values: Iterable[bytes]) -> list[Alert]:
    """The alerts among notifications (incidents and retrain outcomes are skipped; anything else raises)."""
    return [n for n in map(decode_notification, values) if isinstance(n, Alert)]
