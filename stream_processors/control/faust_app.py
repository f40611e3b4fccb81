"""The control plane on faust-streaming: alert routing with changelog-backed state.

Alerts are few (per-event cost does not matter here), and their routing state -- alert ids
already seen, when each (model, version, type, feature) last fired -- must survive restarts:
faust Tables backed by changelog topics give exactly that. The data plane (predictions, labels)
never goes through faust; it runs on the batched confluent-kafka runner.

The app is built by :func:`create_app` -- no import-time global app.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import faust

from driftline.config import DriftlineSettings, KafkaSettings
from driftline.errors import ConfigError
from driftline.transport import Record
from stream_processors.control.handler import AlertHandler
from stream_processors.control.routing import AlertRouter
from stream_processors.control.sinks import AlertSink, build_sinks, fan_out

__all__ = ["create_app"]

_RAW: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}


class _FaustTopics:
    """The app's raw-bytes topics by name; also a :class:`driftline.transport.Sink` (through
    faust's producer buffer) for the alert sinks that publish, such as the ``topic`` sink."""

    def __init__(self, app: faust.App) -> None:
        self.app = app
        self._topics: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        topic = self._topics.get(name)
        if topic is None:
            topic = self._topics[name] = self.app.topic(name, **_RAW)
        return topic

    def send(self, topic: str, key: bytes | None, value: bytes, timestamp: float | None = None) -> None:
        self[topic].send_soon(key=key, value=value, timestamp=timestamp)

    def flush(self, timeout: float = 10.0) -> int:
        return 0  # faust flushes its producer buffer before it commits


def _credentials(kafka: KafkaSettings) -> faust.SASLCredentials | faust.SSLCredentials | None:
    """The same TLS / SASL settings the confluent-kafka clients use, as faust (aiokafka) credentials."""
    ctx = kafka.ssl_context()
    if kafka.sasl_mechanism:
        password = kafka.sasl_password.get_secret_value() if kafka.sasl_password else None
        return faust.SASLCredentials(
            username=kafka.sasl_username, password=password, ssl_context=ctx, mechanism=kafka.sasl_mechanism
        )
    return faust.SSLCredentials(ctx) if ctx is not None else None


def create_app(
    settings: DriftlineSettings,
    *,
    app_id: str = "driftline-control-plane",
    datadir: str = ".driftline/faust",
    sinks: Sequence[AlertSink] | None = None,
) -> faust.App:
    """The control-plane app (not started). ``sinks`` replaces the sinks ``settings.routing.sinks``
    names; a bad sink name or a missing sink setting raises :class:`ConfigError` here."""
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
        broker_credentials=_credentials(kafka),
    )
    out = _FaustTopics(app)
    alert_sinks = list(sinks) if sinks is not None else build_sinks(settings.routing, out)
    seen = app.Table("driftline-alert-seen", default=float, partitions=kafka.partitions)
    last_fired = app.Table("driftline-alert-last-fired", default=float, partitions=kafka.partitions)
    handler = AlertHandler(AlertRouter(settings.routing, seen=seen, last_fired=last_fired), topics)

    @app.agent(out[topics.alerts])
    async def route(stream: Any) -> None:
        async for event in stream.events():
            msg = event.message
            record = Record(
                topic=msg.topic,
                value=event.value,
                key=event.key,
                partition=msg.partition,
                offset=msg.offset,
                timestamp=msg.timestamp or 0.0,
            )
            handled = handler.handle(record)
            if handled.delivered is not None:
                fan_out(alert_sinks, handled.delivered)
            for o in handled.outputs:
                await out[o.topic].send(key=o.key, value=o.value, timestamp=o.timestamp)

    return app
