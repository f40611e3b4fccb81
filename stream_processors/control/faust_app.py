"""The control plane on faust-streaming: alert routing with changelog-backed state.

Alerts are few (per-event cost does not matter here), and their routing state -- per (model,
version, type, feature): the alert ids decided, where each was read, when the key last fired; per
model: its incidents -- must survive restarts: a faust Table backed by a changelog topic gives that.
The agent reads the alerts, the metrics (they resolve incidents) and the models topic (promotions
become notifications); all three are keyed by model and have ``kafka.partitions`` partitions, so a
model's table entries stay on the partition its records come from. HTTP sinks post from the outbox's
thread (:class:`~stream_processors.control.sinks.Delivery`), never on faust's event loop. The data plane
(predictions, labels) never goes through faust; it runs on the batched confluent-kafka runner.

What a kill -9 does (faust commits an alert's offset only after flushing the messages sent for it
and the table's changelog, so nothing before a committed offset is lost): alerts after the last
commit are read again, and the table may already hold their decisions (its changelog can reach the
broker before the offset commit). Each table entry is written whole, once per alert, so it is a
consistent prefix of its key's decisions; :class:`~stream_processors.control.routing.AlertRouter`
gives a record read again from the same offset the decision it got the first time. A replay
therefore repeats notifications and retrain requests (the same ids: the retrain worker acts once
per request id; readers of the notifications drop copies by alert id) but never loses one, never
lets a duplicate pass dedup and never restarts a cooldown. The alert sinks (log, webhook) are not
called again on a replay; a webhook delivery cut off by the kill itself may arrive twice, with the
same ``X-Driftline-Delivery`` id.

The consumer reads ``read_committed``: alerts from an aborted transaction of the processor are
never routed. The group session is 10 s, so a restarted control plane takes over after 10 s, not
faust's default 60 s.

The app is built by :func:`create_app` -- no import-time global app.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

import faust
from aiokafka import errors as aiokafka_errors
from confluent_kafka import KafkaError, KafkaException
from faust.exceptions import NotReady
from faust.transport.drivers import aiokafka as faust_aiokafka

from driftline.config import DriftlineSettings, KafkaSettings
from driftline.kafka_admin import ensure_topics
from driftline.kafka_retry import is_retriable
from driftline.observability import Exporter
from driftline.transport import Record
from stream_processors.control.handler import AlertHandler, Handled
from stream_processors.control.routing import AlertRouter
from stream_processors.control.sinks import AlertSink, Delivery, fan_out

__all__ = ["create_app"]

_RAW: dict[str, Any] = {"key_serializer": "raw", "value_serializer": "raw"}
log = logging.getLogger(__name__)

ROUTING_TABLE = "driftline-alert-routing"
READ_COMMITTED = "read_committed"
METADATA_MAX_AGE_MS = 10_000  # how stale the control plane's view of the topics may get
# metadata read during a broker restart lists no topics: the consumer's assignment then holds none of
# its inputs until its next metadata refresh (5 min by default), and nothing is routed until then
_FRESH_METADATA: dict[str, Any] = {
    "consumer_metadata_max_age_ms": METADATA_MAX_AGE_MS,
    "producer_metadata_max_age_ms": METADATA_MAX_AGE_MS,
}
TOPIC_CREATION_PATIENCE_S = 120.0  # how long a starting control plane waits for the broker to take a topic


class _ReadCommittedThread(faust_aiokafka.AIOKafkaConsumerThread):  # type: ignore[misc]
    """faust sets ``read_committed`` only with its own exactly-once mode (transactional producers per
    partition), which the control plane does not use; this consumer reads committed records anyway."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        consumer._isolation_level = READ_COMMITTED  # aiokafka hands it to its fetcher on start()
        return consumer


class _Consumer(faust_aiokafka.Consumer):  # type: ignore[misc]
    def _new_consumer_thread(self) -> _ReadCommittedThread:
        return _ReadCommittedThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(faust_aiokafka.Transport):  # type: ignore[misc]
    """Also: faust's topic creation at start-up (its changelog, its assignor's topic) tried again while
    the broker is coming back -- a broker just restarted answers "all brokers are currently fenced"
    (``InvalidReplicationFactorError``) or drops the connection for a few seconds, and faust would let
    that end the worker."""

    Consumer = _Consumer

    async def _create_topic(self, owner: Any, client: Any, topic: str, *args: Any, **kwargs: Any) -> None:
        deadline, wait = time.monotonic() + TOPIC_CREATION_PATIENCE_S, 0.2
        while True:
            try:
                return await super()._create_topic(owner, client, topic, *args, **kwargs)
            except Exception as exc:
                if not _passing(exc) or time.monotonic() + wait > deadline or owner.should_stop:
                    raise
                owner.log.warning("Creating topic %r: %r; trying again in %.1f s", topic, exc, wait)
                await asyncio.sleep(wait)
                wait = min(2 * wait, 5.0)


def changelog_topic(app_id: str) -> str:
    """The routing table's changelog topic, as faust names it."""
    return f"{app_id}-{ROUTING_TABLE}-changelog"


def prepare_changelog(
    kafka: KafkaSettings, app_id: str, patience_s: float = TOPIC_CREATION_PATIENCE_S
) -> None:
    """Create the routing table's changelog (compacted, one partition per input partition) before faust
    starts, trying again while a restarted broker is fenced or unreachable: a control plane started
    during a broker outage otherwise finds no changelog, and faust's table then fails its partition
    check and its agent stops routing for good."""
    compact = {"cleanup.policy": "compact"}
    topic = changelog_topic(app_id)
    deadline, wait = time.monotonic() + patience_s, 0.2
    while True:
        try:
            ensure_topics(kafka, [topic], configs={topic: compact})
            return
        except KafkaException as exc:
            err = exc.args[0]
            passing = is_retriable(exc) or "fenced" in str(err) or err.code() == KafkaError._TRANSPORT
            if not passing or time.monotonic() + wait > deadline:
                raise
            log.warning("creating %s: %s; trying again in %.1f s", topic, err, wait)
            time.sleep(wait)
            wait = min(2 * wait, 5.0)


def _passing(exc: BaseException) -> bool:
    """An error of a broker that is starting or moving its controller, not of the request itself.

    >>> fenced = "Unable to replicate the partition 1 time(s): All brokers are currently fenced"
    >>> _passing(aiokafka_errors.InvalidReplicationFactorError(fenced))
    True
    >>> _passing(aiokafka_errors.InvalidReplicationFactorError("replication factor: 3 larger than 1"))
    False
    >>> _passing(aiokafka_errors.TopicAuthorizationFailedError()), _passing(ValueError("bad config"))
    (False, False)
    """
    if isinstance(exc, aiokafka_errors.InvalidReplicationFactorError):
        return "fenced" in str(exc)  # a restarted broker is fenced until it has caught up
    if isinstance(exc, aiokafka_errors.KafkaError):
        return bool(exc.retriable) or isinstance(exc, aiokafka_errors.KafkaConnectionError)
    # faust's own: no controller known yet, or the one asked no longer is it
    if isinstance(exc, (asyncio.TimeoutError, ConnectionError, NotReady)):
        return True
    return "controller" in str(exc).lower() and type(exc) in (Exception, RuntimeError)


class _App(faust.App):  # type: ignore[misc]
    """faust's app on a transport whose consumer reads ``read_committed``."""

    def _new_transport(self) -> Any:
        return _Transport(self.conf.broker_consumer, self)


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


def _observe(exporter: Exporter | None, topic: str, handled: Handled) -> None:
    """Prometheus metrics (``create_app(exporter=...)``): each record read, the incidents it changed."""
    if exporter is not None:
        exporter.events_in.labels(topic).inc()
        exporter.observe_incidents(handled.incidents)


def create_app(
    settings: DriftlineSettings,
    *,
    app_id: str = "driftline-control-plane",
    datadir: str = ".driftline/faust",
    sinks: Sequence[AlertSink] | None = None,
    exporter: Exporter | None = None,
    commit_interval: float = 2.8,
) -> faust.App:
    """The control-plane app (not started). ``sinks`` replaces the sinks ``settings.routing.sinks``
    names; a bad sink name or a missing sink setting raises :class:`ConfigError` here.
    ``commit_interval``: seconds between offset commits (faust's default; a paced replay waits for
    the commit of each retraining alert, so it asks for a short one)."""
    kafka, topics = settings.kafka_for("the control plane"), settings.topics
    app = _App(
        app_id,
        broker=[f"kafka://{h.strip()}" for h in kafka.bootstrap_servers.split(",")],
        datadir=datadir,
        web_enabled=False,
        store="memory://",  # state is rebuilt from the changelog topics on start
        topic_partitions=kafka.partitions,
        topic_replication_factor=kafka.replication_factor,
        producer_acks=-1,
        broker_commit_every=10,
        broker_commit_interval=commit_interval,
        broker_session_timeout=10.0,
        broker_heartbeat_interval=1.0,
        broker_credentials=_credentials(kafka),
        **_FRESH_METADATA,
    )
    out = _FaustTopics(app)
    delivery = Delivery(settings.routing, out)
    alert_sinks = list(sinks) if sinks is not None else delivery.sinks
    state = app.Table(ROUTING_TABLE, partitions=kafka.partitions)  # json values; no default: .get is None
    handler = AlertHandler(AlertRouter(settings.routing, state), topics)

    @app.task  # type: ignore[misc]
    async def start_delivery() -> None:
        delivery.start()  # posts from its own thread: never on this event loop

    @app.agent(app.topic(*handler.inputs, **_RAW))
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
            _observe(exporter, msg.topic, handled)
            for note in handled.notes:
                fan_out(alert_sinks, note)
            for o in handled.outputs:
                await out[o.topic].send(key=o.key, value=o.value, timestamp=o.timestamp)

    return app
