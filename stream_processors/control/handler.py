"""One alert record in, the messages to send out: the control plane's per-record policy.

Both runners -- :class:`~stream_processors.control.inprocess.AlertRoutingRunner` (embedded) and the
faust agent (:mod:`stream_processors.control.faust_app`) -- call :meth:`AlertHandler.handle` and
send what it returns, so an alert is treated the same way under both:

* not a valid :class:`~driftline.contracts.Alert` -> a :class:`~driftline.contracts.DeadLetter`
  (stage ``"route"``, the reason, the original bytes and where they came from) on ``topics.dlq``;
* delivered by the router -> the alert on ``topics.notifications`` (and to the alert sinks, which
  the runner calls with :attr:`Handled.delivered`);
* an alert type that retrains -> a :class:`~driftline.contracts.RetrainRequest` on ``topics.retrain``;
* an alert that opens or changes an incident, or a metric that resolves one -> the
  :class:`~driftline.contracts.Incident` on ``topics.notifications`` and to the alert sinks (also on a
  replay: the sinks' outbox keeps one per notification id; see
  :mod:`~stream_processors.control.incidents`);
* a promoted model version on ``topics.models`` -> a retrain outcome on-call sees (promoted, or
  rolled back when the new champion is older than the one it replaces);
* an ack or a silence on ``topics.alert_actions`` -> kept (:mod:`~stream_processors.control.actions`):
  from then on :attr:`Handled.notes` leaves out what it mutes;
* a duplicate or an alert within its cooldown -> nothing;
* the same record read again after a restart (its offset was not committed) -> the messages its first
  reading sent, again (the same ids: readers drop copies by id), but not to the alert sinks, which were
  called the first time (see :mod:`~stream_processors.control.routing`).

The handler does no I/O; its state is the router's (per cooldown key: the alert ids decided, where
they were read, when the key last fired) and the incident book's (per model), in one mapping.

>>> from driftline.config import RoutingSettings, Topics
>>> from driftline.transport import Record
>>> handler = AlertHandler(AlertRouter(RoutingSettings()), Topics())
>>> [(o.topic, o.key) for o in handler.handle(Record("driftline.alerts", b"oops", offset=3)).outputs]
[('driftline.dlq', None)]
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import NamedTuple

from driftline.config import Topics
from driftline.contracts import (
    Alert,
    AlertAction,
    DeadLetter,
    Incident,
    Metric,
    ModelUpdate,
    Notification,
    RetrainOutcome,
    decode,
    encode,
)
from driftline.errors import ConfigError, InvalidEvent
from driftline.transport import Record
from stream_processors.control.actions import Mutes
from stream_processors.control.incidents import IncidentBook, version_order
from stream_processors.control.routing import AlertRouter, Routed

__all__ = ["STAGE", "AlertHandler", "Handled", "Output"]

STAGE = "route"  # the dead letters' stage


class Output(NamedTuple):
    """One message to send: the same shape as :meth:`driftline.transport.Sink.send`'s arguments."""

    topic: str
    key: bytes | None
    value: bytes
    timestamp: float | None


@dataclass(frozen=True)
class Handled:
    """What became of one alert record."""

    outputs: list[Output] = field(default_factory=list)
    routed: Routed | None = None  # None: the record was not a valid alert
    dead_letter: DeadLetter | None = None
    incidents: list[Incident] = field(default_factory=list)
    outcome: RetrainOutcome | None = None
    notes: list[Notification] = field(default_factory=list)  # for the alert sinks (acks, silences applied)

    @property
    def delivered(self) -> Alert | None:
        """The alert to hand to the alert sinks, if the router delivered it (not again on a replay)."""
        r = self.routed
        return r.alert if r is not None and r.deliver and not r.replayed else None


class AlertHandler:
    """Decodes, routes and turns one alert record into the messages to send."""

    def __init__(
        self,
        router: AlertRouter,
        topics: Topics,
        incidents: IncidentBook | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.router, self.topics, self.clock = router, topics, clock
        self.incidents = incidents if incidents is not None else IncidentBook(router.settings, router.state)
        self.mutes = Mutes(router.state)

    @property
    def inputs(self) -> list[str]:
        """The topics the control plane reads: alerts, the metrics that resolve incidents, models,
        on-call's acks and silences."""
        return [self.topics.alerts, self.topics.metrics, self.topics.models, self.topics.alert_actions]

    def handle(self, record: Record) -> Handled:
        handled = self._handle(record)
        notes: list[Notification] = [handled.delivered] if handled.delivered is not None else []
        notes += [*handled.incidents, *([handled.outcome] if handled.outcome is not None else [])]
        now = self.clock()
        return replace(handled, notes=[n for n in notes if not self.mutes.muted(n, now)])

    def _handle(self, record: Record) -> Handled:
        at = (record.partition, record.offset) if record.offset >= 0 else None  # None: read from nowhere
        if record.topic == self.topics.metrics:
            return self._metric(record, at)
        if record.topic == self.topics.models:
            return self._model(record)
        if record.topic == self.topics.alert_actions:
            try:
                self.mutes.apply(decode(AlertAction, record.value))
            except (InvalidEvent, ConfigError) as exc:
                return self._dead(record, exc)
            return Handled()
        try:
            alert = decode(Alert, record.value)
        except InvalidEvent as exc:
            return self._dead(record, exc)
        routed = self.router.route(alert, at=at)
        key, ts = alert.model.encode(), alert.detected_at_time  # keyed by model: one model's stay in order
        outputs = []
        if routed.deliver:
            outputs.append(Output(self.topics.notifications, key, encode(alert), ts))
        if routed.retrain is not None:
            outputs.append(Output(self.topics.retrain, key, encode(routed.retrain), ts))
        incidents = self.incidents.on_alert(alert, at)
        outputs += [Output(self.topics.notifications, key, encode(i), i.updated_at) for i in incidents]
        return Handled(outputs, routed, incidents=incidents)

    def _metric(self, record: Record, at: tuple[int, int] | None) -> Handled:
        try:
            metric = decode(Metric, record.value)
        except InvalidEvent as exc:
            return self._dead(record, exc)
        incidents = self.incidents.on_metric(metric, at)
        key = metric.model.encode()
        return Handled(
            [Output(self.topics.notifications, key, encode(i), i.updated_at) for i in incidents],
            incidents=incidents,
        )

    def _model(self, record: Record) -> Handled:
        """A promoted version as a retrain outcome on-call sees (the worker publishes only failures)."""
        try:
            update = decode(ModelUpdate, record.value)
        except InvalidEvent as exc:
            return self._dead(record, exc)
        if update.kind != "promoted" or update.previous_version is None:
            return Handled()
        back = version_order(update.version) < version_order(update.previous_version)
        reason = (
            f"rolled back from v{update.previous_version} to v{update.version}"
            if back
            else f"v{update.version} replaces v{update.previous_version} as champion"
        )
        headline = {k: v for k, v in update.metrics.items() if not _evidence_key(k)}  # bounds: in metrics
        metrics = ", ".join(f"{k} {v:.3f}" for k, v in sorted(headline.items()))
        outcome = RetrainOutcome(
            request_id=update.triggered_by or f"{update.model}-v{update.version}",
            model=update.model,
            status="promoted",
            reason=f"{reason}{f' ({metrics})' if metrics else ''}",
            version=update.version,
            metrics=dict(update.metrics),
            detected_at_time=update.created_at,
        )
        out = Output(self.topics.notifications, update.model.encode(), encode(outcome), None)
        return Handled([out], outcome=outcome)

    def _dead(self, record: Record, exc: Exception) -> Handled:
        dead = DeadLetter.of_record(record, exc, STAGE)
        return Handled([Output(self.topics.dlq, record.key, encode(dead), None)], dead_letter=dead)


def _evidence_key(name: str) -> bool:
    """A promotion's confidence bounds and paired difference (retrain_worker.evidence), left out of
    the one-line reason on-call reads; they stay in the outcome's metrics."""
    return name == "confidence" or "_difference" in name or name.endswith(("_ci_low", "_ci_high", "_sd"))
