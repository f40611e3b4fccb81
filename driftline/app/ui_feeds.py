"""Where ``driftline ui`` reads from (:class:`Feed`): the embedded demo's bus, Kafka, or the
embedded control plane's store; each gives a :class:`Snapshot` of the decoded events the page is
built from (:func:`driftline.app.ui.dashboard`)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

from driftline.contracts import Metric, ModelUpdate, Notification, Prediction, decode, decode_notification
from driftline.errors import InvalidEvent
from driftline.registry import ModelRegistry, ModelVersion

__all__ = ["BusFeed", "Feed", "KafkaFeed", "Snapshot", "StoreFeed", "models_of"]

log = logging.getLogger(__name__)


@dataclass
class Snapshot:
    """What the page is built from, decoded; ``features``: each model's input features (the drift
    table lists every one, drifted or not), ``versions``: the registry's, when it is at hand."""

    notes: list[Notification] = field(default_factory=list)
    metrics: list[Metric] = field(default_factory=list)
    updates: list[ModelUpdate] = field(default_factory=list)
    versions: dict[str, list[ModelVersion]] = field(default_factory=dict)
    features: dict[str, list[str]] = field(default_factory=dict)


class Feed(Protocol):
    source: str
    reports_dir: str

    def snapshot(self) -> Snapshot: ...


def _notes(raw: Iterable[bytes]) -> list[Notification]:
    out: list[Notification] = []
    for value in raw:
        try:
            out.append(decode_notification(value))
        except InvalidEvent:
            continue  # not for on-call (or from a newer schema): the page skips it
    return out


def _registry_versions(
    registry: ModelRegistry | None, models: Iterable[str]
) -> dict[str, list[ModelVersion]]:
    out: dict[str, list[ModelVersion]] = {}
    for model in models:
        try:
            out[model] = registry.versions(model) if registry is not None else []
        except Exception:  # the registry is being written, or has no such model: the topics suffice
            log.debug("registry versions of %s unavailable", model, exc_info=True)
    return out


def models_of(snap: Snapshot) -> list[str]:
    names = {m.model for m in snap.metrics} | {u.model for u in snap.updates}
    names |= {n.model for n in snap.notes}
    return sorted(names)


class BusFeed:
    """The embedded demo's topics, read while it runs (appends only: a copy of each log is a
    consistent prefix) and after it, with its registry."""

    source = "embedded"

    def __init__(self, bus: Any, topics: Any, registry: ModelRegistry | None, reports_dir: str = "") -> None:
        self.bus, self.topics, self.registry, self.reports_dir = bus, topics, registry, reports_dir
        self._features: dict[str, list[str]] = {}

    def snapshot(self) -> Snapshot:
        t = self.topics
        snap = Snapshot(
            notes=_notes(r.value for r in self.bus.log(t.notifications)),
            metrics=[decode(Metric, r.value) for r in self.bus.log(t.metrics)],
            updates=[decode(ModelUpdate, r.value) for r in self.bus.log(t.models)],
        )
        if not self._features:
            for r in self.bus.log(t.predictions)[-1:]:
                p = decode(Prediction, r.value)
                self._features[p.model] = sorted(p.features)
        snap.features = dict(self._features)
        snap.versions = _registry_versions(self.registry, models_of(snap))
        return snap


class KafkaFeed:
    """The notifications, metrics and models topics on a broker, read whole at each poll (they are
    small: one metric per window, one notification per change); features from a recent prediction."""

    source = "kafka"

    def __init__(self, settings: Any, registry: ModelRegistry | None, reports_dir: str = "") -> None:
        self.settings, self.registry, self.reports_dir = settings, registry, reports_dir
        self._features: dict[str, list[str]] = {}

    def snapshot(self) -> Snapshot:
        from driftline.app.services import collect_topic

        t, s = self.settings.topics, self.settings
        snap = Snapshot(
            notes=_notes(collect_topic(s, t.notifications)),
            metrics=[decode(Metric, v) for v in collect_topic(s, t.metrics)],
            updates=[decode(ModelUpdate, v) for v in collect_topic(s, t.models)],
        )
        if not self._features:
            for value in _newest(s, t.predictions):
                p = decode(Prediction, value)
                self._features[p.model] = sorted(p.features)
        snap.features = dict(self._features)
        snap.versions = _registry_versions(self.registry, models_of(snap))
        return snap


def _newest(settings: Any, topic: str) -> list[bytes]:
    """The newest record of each partition of ``topic`` (its features name the model's inputs)."""
    from confluent_kafka import Consumer, TopicPartition

    from driftline.kafka import CONSUMER_DEFAULTS

    c = Consumer({**settings.kafka.client_config(), **CONSUMER_DEFAULTS, "group.id": "driftline-ui"})
    try:
        meta = c.list_topics(topic, timeout=10).topics.get(topic)
        wanted = []
        for p in sorted(meta.partitions) if meta is not None else []:
            lo, hi = c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if hi > lo:
                wanted.append(TopicPartition(topic, p, hi - 1))
        if not wanted:
            return []
        c.assign(wanted)
        got = c.consume(len(wanted), timeout=10)
        values = [m.value() for m in got if m.error() is None]
        return [v for v in values if v is not None]
    finally:
        c.close()


class StoreFeed:
    """The embedded control plane's store (``routing.store_dir``): incidents, alerts and retrain
    outcomes -- no metrics, so no quality chart -- with the registry's versions."""

    source = "store"

    def __init__(self, store_dir: str, registry: ModelRegistry | None, reports_dir: str = "") -> None:
        from stream_processors.control.store import AlertStore

        self.store, self.registry, self.reports_dir = AlertStore(store_dir), registry, reports_dir

    def snapshot(self) -> Snapshot:
        snap = Snapshot(notes=_notes(self.store.notifications()))
        snap.versions = _registry_versions(self.registry, models_of(snap))
        return snap
