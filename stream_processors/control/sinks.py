"""Alert sinks: where notifications go besides the notifications topic, chosen by name.

``routing.sinks`` names the sinks (``DRIFTLINE_ROUTING__SINKS='["log", "webhook"]'``);
:func:`build_sinks` turns the names into sinks through the explicit :data:`SINKS` registry and
fails at start-up on an unknown name or a missing setting. A new sink is one class with a
``from_settings`` constructor and one entry in :data:`SINKS`. The HTTP sinks (signed webhook, Slack,
Alertmanager: :mod:`~stream_processors.control.http_sinks`) go through the outbox in the runners
(:class:`Delivery`), never post on the runner's loop and name their URL only as :func:`redact_url`
shows it.

>>> from driftline.config import RoutingSettings
>>> [type(s).__name__ for s in build_sinks(RoutingSettings())]
['LogSink']
>>> build_sinks(RoutingSettings(sinks=("log", "pager")))  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
driftline.errors.ConfigError: routing.sinks: unknown sink 'pager'; valid names: alertmanager, log, ...webhook
>>> build_sinks(RoutingSettings(sinks=("webhook",)))  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
driftline.errors.ConfigError: routing.sinks includes 'webhook', which needs routing.webhook_url: ...
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Final, Protocol

from driftline.config import RoutingSettings
from driftline.contracts import Alert, Incident, Notification, encode
from driftline.errors import ConfigError
from driftline.transport import Sink
from stream_processors.control.http_sinks import (
    AlertmanagerSink,
    HttpSink,
    SlackSink,
    WebhookSink,
    _required,
    notification_id,
    redact_url,
)
from stream_processors.control.outbox import Dispatcher, Outbox
from stream_processors.control.render import alert_line, notification_text

__all__ = [
    "SINKS",
    "AlertSink",
    "AlertmanagerSink",
    "Delivery",
    "LogSink",
    "OutboxSink",
    "SinkFactory",
    "SlackSink",
    "TopicSink",
    "WebhookSink",
    "ForModels",
    "build_sinks",
    "fan_out",
    "redact_url",
]

log = logging.getLogger(__name__)


class AlertSink(Protocol):
    """Delivers one notification (a routed alert, an incident, a retrain outcome) somewhere people
    (or their tools) will see it."""

    def deliver(self, note: Notification) -> None: ...


SinkFactory = Callable[[RoutingSettings, Sink | None], AlertSink]
"""Builds a sink from the routing settings and the runner's transport (``None``: the runner has none)."""


class LogSink:
    """Delivers notifications to the log (and to a list, for reports and tests): alerts and incidents
    at WARNING, resolutions and retrain outcomes at WARNING too -- on-call reads this log."""

    def __init__(self) -> None:
        self.delivered: list[Notification] = []

    @classmethod
    def from_settings(cls, routing: RoutingSettings, transport: Sink | None) -> LogSink:
        return cls()

    def deliver(self, note: Notification) -> None:
        self.delivered.append(note)
        if isinstance(note, Alert):
            log.warning("ALERT %s", alert_line(note))
        elif isinstance(note, Incident):
            log.warning("INCIDENT %s (%s rev %d)", note.title, note.incident_id, note.revision)
        else:
            log.warning("RETRAIN %s", notification_text(note))


class TopicSink:
    """Publishes delivered alerts to one more topic (``routing.sink_topic``), e.g. for an on-call bridge."""

    def __init__(self, sink: Sink, topic: str) -> None:
        self.sink, self.topic = sink, topic

    @classmethod
    def from_settings(cls, routing: RoutingSettings, transport: Sink | None) -> TopicSink:
        topic = _required(routing.sink_topic, "sink_topic", "topic")
        if transport is None:
            raise ConfigError("routing.sinks includes 'topic', but this runner has nothing to publish with")
        return cls(transport, topic)

    def deliver(self, note: Notification) -> None:
        when = note.updated_at if isinstance(note, Incident) else note.detected_at_time
        self.sink.send(self.topic, note.model.encode(), encode(note), when)


class OutboxSink:
    """An HTTP sink behind the outbox: :meth:`deliver` only stores the body (no network call on the
    runner's loop); the :class:`~stream_processors.control.outbox.Dispatcher` posts it."""

    def __init__(self, sink: HttpSink, outbox: Outbox) -> None:
        self.sink, self.outbox = sink, outbox

    def __repr__(self) -> str:
        return f"OutboxSink({self.sink!r})"

    def deliver(self, note: Notification) -> None:
        body = self.sink.body(note)
        if body is not None:
            self.outbox.put(f"{self.sink.name}:{notification_id(note)}", self.sink.name, body)


SINKS: Final[dict[str, SinkFactory]] = {
    "alertmanager": AlertmanagerSink.from_settings,
    "log": LogSink.from_settings,
    "slack": SlackSink.from_settings,
    "topic": TopicSink.from_settings,
    "webhook": WebhookSink.from_settings,
}
"""The alert sinks by the name ``routing.sinks`` uses."""


def build_sinks(
    routing: RoutingSettings, transport: Sink | None = None, outbox: Outbox | None = None
) -> list[AlertSink]:
    """The sinks ``routing.sinks`` (and ``routing.model_sinks``) name, each once, in order; a bad
    name or a missing setting raises :class:`ConfigError` before any sink is built. With an
    ``outbox`` the HTTP sinks only store what they send (:class:`OutboxSink`); without, they post at
    once. With per-model sinks, each sink delivers only the notifications of models routed to it."""
    wanted = {"routing.sinks": routing.sinks}
    wanted |= {f"models.{m}.routing.sinks": names for m, names in routing.model_sinks.items()}
    for key, names in wanted.items():
        unknown = [name for name in names if name not in SINKS]
        if unknown:
            listed = ", ".join(repr(n) for n in unknown)
            raise ConfigError(
                f"{key}: unknown sink{'s' if len(unknown) > 1 else ''} {listed}; "
                f"valid names: {', '.join(sorted(SINKS))}"
            )
    every = dict.fromkeys(name for names in wanted.values() for name in names)
    sinks = {name: SINKS[name](routing, transport) for name in every}
    if outbox is not None:
        sinks = {n: OutboxSink(s, outbox) if isinstance(s, HttpSink) else s for n, s in sinks.items()}
    if not routing.model_sinks:
        return list(sinks.values())
    return [ForModels(sink, name, routing) for name, sink in sinks.items()]


class ForModels:
    """A sink that delivers a model's notifications only if the model is routed to it: its own
    ``routing.model_sinks`` entry names it, or, without one, ``routing.sinks`` does."""

    def __init__(self, sink: AlertSink, name: str, routing: RoutingSettings) -> None:
        self.sink, self.name = sink, name
        self.default, self.per_model = name in routing.sinks, routing.model_sinks

    def __repr__(self) -> str:
        return f"ForModels({self.sink!r})"

    def deliver(self, note: Notification) -> None:
        names = self.per_model.get(note.model)
        if (self.name in names) if names is not None else self.default:
            self.sink.deliver(note)


class Delivery:
    """The runners' sinks and the outbox dispatcher behind the HTTP ones, built from the settings."""

    def __init__(self, routing: RoutingSettings, transport: Sink | None = None) -> None:
        self.outbox = Outbox.in_dir(routing.outbox_dir)
        self.sinks = build_sinks(routing, transport, self.outbox)
        inner = [s.sink if isinstance(s, ForModels) else s for s in self.sinks]
        http = {s.sink.name: s.sink for s in inner if isinstance(s, OutboxSink)}
        self.dispatcher = Dispatcher(self.outbox, http, retry_max_s=routing.retry_max_s)

    def start(self) -> None:
        """Posts in the background from now on (a no-op without HTTP sinks)."""
        if self.dispatcher.sinks:
            self.dispatcher.start()

    def stop(self) -> None:
        self.dispatcher.stop()


def fan_out(sinks: Iterable[AlertSink], note: Notification) -> None:
    """Delivers ``note`` to every sink; a failing sink is logged and does not stop the others
    (the notification is on the notifications topic whatever a sink does)."""
    for sink in sinks:
        try:
            sink.deliver(note)
        except Exception:
            what = "alert" if isinstance(note, Alert) else type(note).__name__.lower()
            log.exception("alert sink %s failed on %s %s", type(sink).__name__, what, notification_id(note))
