"""The control plane on faust-streaming: alert routing with changelog-backed state.

Alerts are few (per-event cost does not matter here), and their routing state -- alert ids
already seen, when each (model, version, type, feature) last fired -- must survive restarts:
faust Tables backed by changelog topics give exactly that. The data plane (predictions, labels)
never goes through faust; it runs on the batched confluent-kafka runner.

The app is built by :func:`create_app` -- no import-time global app.
"""

from __future__ import annotations

import logging
from typing import Any

import faust

from driftline.config import DriftlineSettings
from driftline.contracts import Alert, DeadLetter, decode, encode
from driftline.errors import ConfigError, InvalidEvent
from stream_processors.control.routing import AlertRouter, AlertSink, LogSink, WebhookSink

__all__ = ["create_app"]

log = logging.getLogger(__name__)


def create_app(
    settings: DriftlineSettings,
    *,
    app_id: str = "driftline-control-plane",
    datadir: str = ".driftline/faust",
    sinks: list[AlertSink] | None = None,
) -> faust.App:
    if settings.kafka is None:
        raise ConfigError(
            "the control plane needs Kafka: pass --bootstrap-servers or set "
            "DRIFTLINE_KAFKA__BOOTSTRAP_SERVERS"
        )
    kafka, topics = settings.kafka, settings.topics
    app = faust.App(
        app_id,
        broker=[f"kafka://{h.strip()}" for h in kafka.bootstrap_servers.split(",")],
        datadir=datadir,
        web_enabled=False,
        store="memory://",  # state is rebuilt from the changelog topics on start
        topic_partitions=kafka.partitions,
        topic_replication_factor=kafka.replication_factor,
        producer_acks=-1,
        broker_commit_every=10,
    )
    raw: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}
    alerts = app.topic(topics.alerts, **raw)
    retrain = app.topic(topics.retrain, **raw)
    notifications = app.topic(topics.notifications, **raw)
    dlq = app.topic(topics.dlq, **raw)
    seen = app.Table("driftline-alert-seen", default=float, partitions=kafka.partitions)
    last_fired = app.Table("driftline-alert-last-fired", default=float, partitions=kafka.partitions)
    router = AlertRouter(settings.routing, seen=seen, last_fired=last_fired)
    alert_sinks: list[AlertSink] = list(sinks) if sinks is not None else [LogSink()]
    if sinks is None and settings.routing.webhook_url:
        alert_sinks.append(WebhookSink(settings.routing.webhook_url))

    @app.agent(alerts)
    async def route(stream: Any) -> None:
        async for event in stream.events():
            value: bytes = event.value
            try:
                alert = decode(Alert, value)
            except InvalidEvent as exc:
                msg = event.message
                dead = DeadLetter.of(
                    stage="route",
                    exc=exc,
                    value=value,
                    topic=msg.topic,
                    partition=msg.partition,
                    offset=msg.offset,
                    key=event.key,
                )
                await dlq.send(key=event.key, value=encode(dead))
                continue
            routed = router.route(alert)
            if routed.deliver:
                for sink in alert_sinks:
                    sink.deliver(alert)
                await notifications.send(key=event.key, value=value)
            if routed.retrain is not None:
                await retrain.send(key=event.key, value=encode(routed.retrain))

    app.driftline_router = router  # type: ignore[attr-defined]
    return app
