"""Kafka administration: waiting for a broker, creating topics (the Kafka transport is
:mod:`driftline.kafka`)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from driftline.config import KafkaSettings
from driftline.errors import ConfigError, DriftlineError

__all__ = ["ensure_topics", "wait_for_broker"]


def wait_for_broker(settings: KafkaSettings, timeout: float = 30.0) -> None:
    admin = AdminClient(settings.client_config())
    deadline = time.monotonic() + timeout
    while True:
        try:
            admin.list_topics(timeout=2)
            return
        except KafkaException as exc:
            if time.monotonic() > deadline:
                raise DriftlineError(
                    f"no Kafka broker answered at {settings.bootstrap_servers} "
                    f"within {timeout:.0f}s ({exc}); "
                    "check --bootstrap-servers / DRIFTLINE_KAFKA__BOOTSTRAP_SERVERS"
                ) from None


def ensure_topics(
    settings: KafkaSettings,
    topics: Iterable[str],
    partitions: int | None = None,
    configs: Mapping[str, dict[str, str]] | None = None,
) -> list[str]:
    """Create the topics that do not exist yet (``configs``: settings per topic); returns those created."""
    admin = AdminClient(settings.client_config())
    existing = set(admin.list_topics(timeout=10).topics)
    n = partitions or settings.partitions
    rf = settings.replication_factor
    conf = configs or {}
    new = [
        NewTopic(t, num_partitions=n, replication_factor=rf, config=conf.get(t, {}))
        for t in topics
        if t not in existing
    ]
    if not new:
        return []
    created = []
    for topic, fut in admin.create_topics(new, operation_timeout=30).items():
        try:
            fut.result()
            created.append(topic)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise ConfigError(f"cannot create topic {topic!r}: {exc}") from None
    return created
