"""Alert routing (control plane): deduplicate, cool down, deliver, and trigger retraining.

The decision logic is pure and keeps its state in two mappings, so the same router runs on
plain dicts (embedded mode) or on faust changelog-backed tables (Kafka mode, see
:mod:`stream_processors.control.faust_app`).

>>> from driftline.config import RoutingSettings
>>> from driftline.contracts import Alert, Window
>>> w = Window(start_index=0, end_index=10, start_time=0.0, end_time=5.0, n=10)
>>> a = Alert(alert_id="x1", type="concept_drift", model="m", model_version="1", feature=None,
...           statistic="adwin", value=0.3, threshold=0.1, window=w,
...           detected_at_index=9, detected_at_time=5.0)
>>> r = AlertRouter(RoutingSettings(cooldown_s=60))
>>> d = r.route(a); d.deliver, d.retrain is not None
(True, True)
>>> r.route(a).reason
'duplicate alert id'
"""

from __future__ import annotations

import json
import logging
import urllib.request
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Protocol

from driftline.config import RoutingSettings
from driftline.contracts import Alert, RetrainRequest, encode
from driftline.transport import Sink

__all__ = ["AlertRouter", "AlertSink", "LogSink", "Routed", "TopicSink", "WebhookSink"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Routed:
    alert: Alert
    deliver: bool
    reason: str
    retrain: RetrainRequest | None = None


class AlertRouter:
    def __init__(
        self,
        settings: RoutingSettings,
        seen: MutableMapping[str, float] | None = None,
        last_fired: MutableMapping[str, float] | None = None,
    ) -> None:
        self.settings = settings
        self.seen: MutableMapping[str, float] = {} if seen is None else seen
        self.last_fired: MutableMapping[str, float] = {} if last_fired is None else last_fired

    def route(self, alert: Alert) -> Routed:
        if alert.alert_id in self.seen:
            return Routed(alert, False, "duplicate alert id")
        self.seen[alert.alert_id] = alert.detected_at_time
        key = f"{alert.model}|{alert.model_version}|{alert.type}|{alert.feature}"
        last = self.last_fired.get(key)
        if last is not None and alert.detected_at_time - last < self.settings.cooldown_s:
            return Routed(alert, False, f"cooldown: same alert {alert.detected_at_time - last:.0f}s ago")
        self.last_fired[key] = alert.detected_at_time
        retrain = None
        if alert.type in self.settings.retrain_on:
            retrain = RetrainRequest(
                request_id=alert.alert_id, model=alert.model, model_version=alert.model_version, alert=alert
            )
        return Routed(alert, True, "delivered", retrain)


class AlertSink(Protocol):
    def deliver(self, alert: Alert) -> None: ...


class LogSink:
    """Delivers alerts to the log (and to a list, for reports and tests)."""

    def __init__(self) -> None:
        self.delivered: list[Alert] = []

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
    """Publishes delivered alerts to the notifications topic, for on-call tooling and reports."""

    def __init__(self, sink: Sink, topic: str) -> None:
        self.sink, self.topic = sink, topic

    def deliver(self, alert: Alert) -> None:
        self.sink.send(self.topic, alert.model.encode(), encode(alert), alert.detected_at_time)


class WebhookSink:
    """POSTs the alert JSON to a URL (Slack/Alertmanager bridges accept it); never raises."""

    def __init__(self, url: str, timeout: float = 2.0) -> None:
        self.url, self.timeout = url, timeout
        self.failures = 0

    def deliver(self, alert: Alert) -> None:
        body = json.dumps({"text": alert.message, "alert": json.loads(encode(alert))}).encode()
        req = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310 - user-configured URL
                resp.read()
        except OSError as exc:
            self.failures += 1
            log.error("webhook delivery to %s failed: %s", self.url, exc)
