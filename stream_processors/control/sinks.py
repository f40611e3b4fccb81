"""Alert sinks: where a delivered alert goes besides the notifications topic, chosen by name.

``routing.sinks`` names the sinks (``DRIFTLINE_ROUTING__SINKS='["log", "webhook"]'``);
:func:`build_sinks` turns the names into sinks through the explicit :data:`SINKS` registry and
fails at start-up on an unknown name or a missing setting. A new sink (Slack, Alertmanager) is
one class with a ``from_settings`` constructor and one entry in :data:`SINKS`.

>>> from driftline.config import RoutingSettings
>>> [type(s).__name__ for s in build_sinks(RoutingSettings())]
['LogSink']
>>> build_sinks(RoutingSettings(sinks=("log", "pager")))
Traceback (most recent call last):
...
driftline.errors.ConfigError: routing.sinks: unknown sink 'pager'; valid names: log, topic, webhook
>>> build_sinks(RoutingSettings(sinks=("webhook",)))  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
driftline.errors.ConfigError: routing.sinks includes 'webhook', which needs routing.webhook_url: ...
"""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import Callable, Iterable
from typing import Final, Protocol, TypeVar

from driftline.config import RoutingSettings
from driftline.contracts import Alert, encode
from driftline.errors import ConfigError
from driftline.transport import Sink

__all__ = [
    "SINKS",
    "AlertSink",
    "LogSink",
    "SinkFactory",
    "TopicSink",
    "WebhookSink",
    "build_sinks",
    "fan_out",
]

log = logging.getLogger(__name__)
T = TypeVar("T")


class AlertSink(Protocol):
    """Delivers one routed alert somewhere people (or their tools) will see it."""

    def deliver(self, alert: Alert) -> None: ...


SinkFactory = Callable[[RoutingSettings, Sink | None], AlertSink]
"""Builds a sink from the routing settings and the runner's transport (``None``: the runner has none)."""


def _required(value: T | None, key: str, sink: str) -> T:
    if value is None or value == "":
        raise ConfigError(
            f"routing.sinks includes {sink!r}, which needs routing.{key}: "
            f"set DRIFTLINE_ROUTING__{key.upper()}"
        )
    return value


class LogSink:
    """Delivers alerts to the log (and to a list, for reports and tests)."""

    def __init__(self) -> None:
        self.delivered: list[Alert] = []

    @classmethod
    def from_settings(cls, routing: RoutingSettings, transport: Sink | None) -> LogSink:
        return cls()

    def deliver(self, alert: Alert) -> None:
        self.delivered.append(alert)
        log.warning(
            "ALERT %s %s v%s %s: %s",
            alert.type,
            alert.model,
            alert.model_version,
            alert.feature or "-",
            alert.message,
        )


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

    def deliver(self, alert: Alert) -> None:
        self.sink.send(self.topic, alert.model.encode(), encode(alert), alert.detected_at_time)


class WebhookSink:
    """POSTs the alert JSON to a URL (Slack/Alertmanager bridges accept it); never raises."""

    def __init__(self, url: str, timeout: float = 2.0) -> None:
        self.url, self.timeout = url, timeout
        self.failures = 0

    @classmethod
    def from_settings(cls, routing: RoutingSettings, transport: Sink | None) -> WebhookSink:
        return cls(_required(routing.webhook_url, "webhook_url", "webhook"))

    def deliver(self, alert: Alert) -> None:
        body = json.dumps({"text": alert.message, "alert": json.loads(encode(alert))}).encode()
        req = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 - user-configured URL
                resp.read()
        except OSError as exc:
            self.failures += 1
            log.error("webhook delivery to %s failed: %s", self.url, exc)


SINKS: Final[dict[str, SinkFactory]] = {
    "log": LogSink.from_settings,
    "topic": TopicSink.from_settings,
    "webhook": WebhookSink.from_settings,
}
"""The alert sinks by the name ``routing.sinks`` uses."""


def build_sinks(routing: RoutingSettings, transport: Sink | None = None) -> list[AlertSink]:
    """The sinks ``routing.sinks`` names, each once, in order; a bad name or a missing setting
    raises :class:`ConfigError` before any sink is built."""
    unknown = [name for name in routing.sinks if name not in SINKS]
    if unknown:
        names = ", ".join(repr(n) for n in unknown)
        raise ConfigError(
            f"routing.sinks: unknown sink{'s' if len(unknown) > 1 else ''} {names}; "
            f"valid names: {', '.join(sorted(SINKS))}"
        )
    return [SINKS[name](routing, transport) for name in dict.fromkeys(routing.sinks)]


def fan_out(sinks: Iterable[AlertSink], alert: Alert) -> None:
    """Delivers ``alert`` to every sink; a failing sink is logged and does not stop the others
    (the alert is on the notifications topic whatever a sink does)."""
    for sink in sinks:
        try:
            sink.deliver(alert)
        except Exception:
            log.exception("alert sink %s failed on alert %s", type(sink).__name__, alert.alert_id)
