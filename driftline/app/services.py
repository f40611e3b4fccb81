"""Kafka-mode services: each component as a long-running loop over Kafka topics.

``driftline process``, ``driftline retrain-worker`` and ``driftline simulate`` call these; the
control plane runs as a faust worker (:mod:`stream_processors.control.faust_app`). They share nothing
but topics (and the model registry's store), so each can run as its own service.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

from detectors.tasks import get_task
from driftline.app.demo import announce_version
from driftline.app.metrics_export import ProcessorObserver
from driftline.app.pacing import Ends, KafkaPacer, Pacing, clock_topic
from driftline.config import DriftlineSettings
from driftline.contracts import Label, ModelUpdate, Prediction, decode
from driftline.errors import ConfigError, InvalidEvent
from driftline.kafka import KafkaSink, KafkaSource
from driftline.kafka_admin import ensure_topics, wait_for_broker
from driftline.kafka_readers import KafkaTableReader, KafkaWindowReader, read_partition
from driftline.kafka_transactions import TransactionalSink
from driftline.observability import Exporter
from driftline.registry import open_registry
from driftline.transport import Record
from producers.sdk import DriftlineClient
from producers.serving import ModelServer
from producers.simulator import Scenario, Simulator
from retrain_worker.rollback import RollbackRunner, watcher_for
from retrain_worker.runner import RetrainRunner
from retrain_worker.worker import RetrainWorker
from stream_processors.core.announcements import Announcements
from stream_processors.core.processor import ProcessorCore
from stream_processors.runners.changelog import ChangelogStore
from stream_processors.runners.checkpoint import CheckpointStore
from stream_processors.runners.kafka import KafkaRunner

__all__ = [
    "announce_on_kafka",
    "collect_topic",
    "prepare_kafka",
    "run_processor",
    "run_retrain_worker",
    "run_simulation",
    "wait_until",
]

log = logging.getLogger(__name__)
Stop = Callable[[], bool]


def prepare_kafka(settings: DriftlineSettings, timeout: float = 30.0) -> list[str]:
    """Wait for the broker and create Driftline's topics; returns the topics created. The models topic
    keeps its records forever: a processor started months later must still learn every announced
    version from it (it is small: one record per registered or promoted version)."""
    kafka = settings.kafka_for("Kafka mode")
    wait_for_broker(kafka, timeout)
    keep_forever = {settings.topics.models: {"retention.ms": "-1", "retention.bytes": "-1"}}
    # the changelog keeps the latest snapshot per key; segments roll each minute so that compaction
    # keeps what a restore reads short
    compact = {"cleanup.policy": "compact", "segment.ms": "60000", "min.cleanable.dirty.ratio": "0.1"}
    configs = {**keep_forever, settings.topics.state: compact}
    return ensure_topics(kafka, settings.topics.all(), configs=configs)


def run_processor(
    settings: DriftlineSettings,
    stop: Stop,
    *,
    group: str = "driftline-processor",
    batch_size: int = 5000,
    state_dir: str | None = None,
    checkpoint_interval: float = 10.0,
    commit_interval: float = 1.0,
    transactional_id: str | None = None,
    exporter: Exporter | None = None,
) -> KafkaRunner:
    """The data plane on Kafka, until ``stop()``. With ``state_dir``, the state of each input partition
    is checkpointed with its offsets (every ``checkpoint_interval`` s, on a rebalance and on a clean
    stop) and restored when the partition is assigned (restart, rebalance); outputs and offsets commit
    every ``commit_interval`` s. With ``settings.state.exactly_once`` (the default), outputs, input
    offsets and snapshots commit in Kafka transactions under ``transactional_id`` (default: the setting,
    else ``<group>-<hostname>``): stable across this instance's restarts, its own per instance."""
    kafka, topics = settings.kafka_for("Kafka mode"), settings.topics
    announced = settings.monitor.require_announcement  # else every version is monitored (and can evict)
    core = ProcessorCore(
        settings.monitor,
        topics,
        announcements=Announcements(topics.models) if announced else None,
        models=settings.models,
    )
    key = settings.state.checkpoint_key
    store: CheckpointStore | ChangelogStore | None = (
        CheckpointStore(state_dir, group, key.get_secret_value().encode() if key else None)
        if state_dir
        else None
    )
    # a short session: a peer in the group takes a dead processor's partitions after 10 s, not
    # librdkafka's default 45 s (heartbeats run on librdkafka's thread)
    session: dict[str, Any] = {"session.timeout.ms": 10_000}
    txn_id = transactional_id or settings.state.transactional_id or f"{group}-{socket.gethostname()}"
    if settings.state.exactly_once:
        # static membership: the instance's own id (unique per instance, as its transactional.id must
        # be) names it in the group, so a restart after a crash takes its partitions back at once, with
        # no rebalance and no wait for the dead session; a clean stop keeps them for the session too
        session["group.instance.id"] = txn_id
    sink = TransactionalSink(kafka, txn_id) if settings.state.exactly_once else KafkaSink(kafka, block=True)
    if settings.state.store == "changelog":
        store = _changelog(settings, sink, group)
    runner = KafkaRunner(
        core,
        KafkaSource(kafka, [topics.predictions, topics.labels], group, **session),
        sink,
        transactions=sink if isinstance(sink, TransactionalSink) else None,
        store=store,
        batch_size=batch_size,
        commit_interval=commit_interval,
        save_interval=checkpoint_interval,
        announcements=KafkaTableReader(kafka, topics.models) if announced else None,
    )
    # Prometheus metrics, per batch and per checkpoint, and the drift levels every few seconds
    runner.observer = None if exporter is None else ProcessorObserver(exporter, core)
    _freeze_startup_objects()
    runner.run(stop)
    return runner


def _freeze_startup_objects() -> None:
    """Leave what start-up made (modules and their tables: ~180k tracked objects with scipy, river,
    pandas) out of the cyclic collector's full passes, which otherwise walk it all again whenever the
    objects made since the last one reach a quarter of the old: in an 8-feature run of 300k events two
    such passes took 0.38-0.49 s of the processing loop. Frozen objects are still freed by reference
    counting; only cycles among them are not. Also spares a forked snapshot child the copy-on-write of
    every page a pass would touch. No collection first: it walks everything once more, a pause of its
    own (the latency bench's p99 at 1k events/s 154 -> 480-508 ms); start-up's cyclic garbage stays."""
    gc.freeze()


def _changelog(settings: DriftlineSettings, sink: KafkaSink, group: str) -> ChangelogStore:
    """Snapshots on the changelog topic, written in the processor's transactions."""
    key = settings.state.checkpoint_key
    if not isinstance(sink, TransactionalSink):
        raise ConfigError(
            "state.store=changelog needs state.exactly_once (snapshots commit in its transactions)"
        )
    if key is None:
        raise ConfigError(
            "state.store=changelog needs DRIFTLINE_STATE__CHECKPOINT_KEY (the snapshots' HMAC key, the "
            "same on every instance): make one with python -c 'import secrets; print(secrets.token_hex(32))'"
        )
    kafka, topic = settings.kafka_for("Kafka mode"), settings.topics.state
    return ChangelogStore(
        sink, lambda p: read_partition(kafka, topic, p), topic, group, key.get_secret_value().encode()
    )


def run_retrain_worker(
    settings: DriftlineSettings,
    stop: Stop,
    *,
    registry_dir: str | None = None,
    group: str = "driftline-retrain-worker",
    exporter: Exporter | None = None,
) -> RetrainWorker:
    kafka, topics = settings.kafka_for("Kafka mode"), settings.topics
    registry = open_registry(settings.retrain, registry_dir)
    worker = RetrainWorker(
        settings,  # the spec's per-model recipes over the global retrain block
        topics,
        registry,
        KafkaWindowReader(kafka),
        KafkaSink(kafka, block=True),
        task=get_task(settings.monitor.task),
    )
    # a request is committed once its outcome is recorded: a kill loses no pending request. A short
    # session lets a restarted worker take over a killed one's partitions after 10 s, not 45 s
    # (heartbeats run on librdkafka's thread: a long refit does not end the session).
    session: dict[str, Any] = {"session.timeout.ms": 10_000}
    clock = clock_topic(
        topics
    )  # a paced producer's ticks (driftline.app.pacing): decisions at its event times
    ensure_topics(kafka, [clock])
    source = KafkaSource(kafka, [topics.retrain, clock], group, **session)
    on_outcomes = exporter.observe_retrains if exporter is not None else None
    scored = [(topics.scored, p) for p in range(kafka.partitions)]
    runner = RetrainRunner(  # unpaced: pending requests tried again as labelled events arrive
        worker,
        source,
        on_outcomes=on_outcomes,
        clock_topic=clock,
        progress=lambda: sum((source.ends(scored) or {}).values()),
        retry_every=100,
    )
    source.listen(runner)
    # the same short session: a restarted worker judges the metrics again after 10 s, not 45 s
    committed_only: dict[str, Any] = {"isolation.level": "read_committed", **session}
    metrics = KafkaSource(kafka, [topics.metrics], f"{group}-rollback", **committed_only)
    rollback = RollbackRunner(watcher_for(worker), metrics)  # the champions' live metrics: rolled back?
    runner.run(rollback.alongside(stop))
    return worker


def run_simulation(
    settings: DriftlineSettings,
    scenario: Scenario,
    *,
    registry_dir: str,
    rate: float,
    batch_size: int = 200,
    stop: Stop = lambda: False,
    pace: Pacing | None = None,
) -> ModelServer:
    """Serve the scenario's stream at ``rate`` predictions/s; hot-reload on model updates.

    Unpaced, event times are anchored to the wall clock (the stream starts now and advances at
    ``rate``): they become the records' Kafka timestamps, and a broker deletes records whose
    timestamps are older than its retention (7 days by default) -- a simulated past would vanish.

    With ``pace`` the stream keeps the scenario's event rate (``rate`` is the replay's top speed),
    ending now, and the producer holds at each tick until the loop caught up
    (:class:`~driftline.app.pacing.KafkaPacer`): updates serve from the prediction they do in the
    embedded loop, whatever the speed.
    """
    if pace is None:
        scenario = dataclasses.replace(scenario, start_time=time.time(), events_per_second=rate)
    else:
        span = scenario.n_events / scenario.events_per_second
        scenario = dataclasses.replace(scenario, start_time=float(int(time.time() - span)))
        batch_size = pace.tick
    kafka, topics = settings.kafka_for("Kafka mode"), settings.topics
    server = ModelServer(
        scenario.model, open_registry(settings.retrain, registry_dir), get_task(settings.monitor.task)
    )
    client = DriftlineClient(
        KafkaSink(kafka), model=scenario.model, model_version=server.version, topics=topics
    )
    announce_on_kafka(settings, scenario.model, server.version)  # the version served, before its predictions
    updates = _Updates(KafkaSource(kafka, [topics.models], f"driftline-serving-{uuid.uuid4().hex[:8]}"))
    pacer = KafkaPacer(kafka, topics, pace) if pace is not None else None
    sim = Simulator(scenario, server)
    started = time.monotonic()
    try:
        while not stop() and not (sim.done() and pacer is None):
            now = scenario.time_of(sim.index)
            until = _hold(pacer, client, now, topics.models) if pacer is not None else None
            _apply_updates(updates, server, now, until=until)
            if sim.done():
                break  # paced: the embedded loop's last turn, a decision at the stream's end, is taken
            client.model_version = server.version
            batch = sim.next_batch(batch_size)
            events: list[Prediction | Label] = [*batch.predictions, *batch.labels]
            for event in events:
                client.emit(event)
            ahead = sim.index / rate - (time.monotonic() - started)
            if ahead > 0:
                time.sleep(ahead)
    finally:
        client.close()
        updates.source.close()
        if pacer is not None:
            pacer.close()
    return server


def _hold(pacer: KafkaPacer, client: DriftlineClient, now: float, models: str) -> Ends | None:
    """A paced producer's tick: everything before ``now`` sent, then held until the loop caught up;
    the models topic's end offsets if the retrain worker decided at this tick (serving reads up to
    them before the next prediction), else None."""
    client.flush()
    return pacer.ends(models) if pacer.barrier(now) else None


class _Updates:
    """Serving's reader of the models topic: what it has read up to, per partition."""

    def __init__(self, source: KafkaSource) -> None:
        self.source = source
        self.seen: Ends = {}

    def read(self, until: Ends | None, timeout: float = 30.0) -> list[Record]:
        """The updates there are; with ``until`` (paced, at a tick the worker decided on), every one
        before these offsets, so an update decided at this tick is not missed (bounded by ``timeout``:
        a models topic that cannot be read leaves serving on its version, as unpaced)."""
        out = self._poll(0.0)
        deadline = time.monotonic() + timeout
        while until and any(self.seen.get(tp, 0) < end for tp, end in until.items()):
            if time.monotonic() > deadline:
                log.warning("serving: the models topic was not read up to %s within %.0f s", until, timeout)
                break
            out += self._poll(0.01)
        return out

    def _poll(self, timeout: float) -> list[Record]:
        out = self.source.poll(100, timeout=timeout)
        for rec in out:
            tp = (rec.topic, rec.partition)
            self.seen[tp] = max(self.seen.get(tp, 0), rec.offset + 1)
        return out


def _apply_updates(updates: _Updates, server: ModelServer, now: float, *, until: Ends | None) -> None:
    """Hand the model updates read to serving (``now``: the next prediction's event time)."""
    for rec in updates.read(until):
        try:
            server.apply(decode(ModelUpdate, rec.value), now=now)
        except InvalidEvent as exc:  # a bad message on the models topic never stops serving
            log.error("models topic: ignoring an invalid model update: %s", exc)


def announce_on_kafka(settings: DriftlineSettings, model: str, version: str) -> None:
    """Announce ``model`` ``version`` on the models topic; returns once the broker acknowledged it."""
    sink = KafkaSink(settings.kafka_for("Kafka mode"), block=True)
    announce_version(sink, settings.topics, model, version, created_at=time.time())


def collect_topic(settings: DriftlineSettings, topic: str) -> list[bytes]:
    """Every record currently in ``topic`` (for reports and tests)."""
    return [r.value for r in KafkaWindowReader(settings.kafka_for("Kafka mode")).read_since(topic, 0.0, -1)]


def wait_until(cond: Callable[[], bool], timeout: float, interval: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(interval)
    return cond()
