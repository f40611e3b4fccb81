"""The models topic read as a table on the real broker: every partition from the start, without a
group; each catch-up returns what was acknowledged before it, once."""

from __future__ import annotations

import pytest

from driftline.app.demo import announce_version
from driftline.app.services import prepare_kafka
from driftline.contracts import ModelUpdate, decode
from driftline.errors import DriftlineError
from driftline.kafka import KafkaSink
from driftline.kafka_readers import KafkaTableReader

pytestmark = pytest.mark.kafka


def versions(records) -> list[tuple[str, str]]:
    return sorted((u.model, u.version) for u in (decode(ModelUpdate, r.value) for r in records))


def test_table_reader_returns_every_acknowledged_announcement_once(kafka_settings) -> None:
    settings = kafka_settings(partitions=3)
    prepare_kafka(settings)
    kafka, topics = settings.kafka, settings.topics
    assert kafka is not None
    sink = KafkaSink(kafka, block=True)
    table = KafkaTableReader(kafka, topics.models)
    try:
        assert table.catch_up() == []  # an empty topic: nothing, at once
        for model in ("a", "b", "c", "d"):  # keyed by model: spread over the partitions
            announce_version(sink, topics, model, "1")
        assert versions(table.catch_up()) == [("a", "1"), ("b", "1"), ("c", "1"), ("d", "1")]
        assert table.catch_up() == []
        announce_version(sink, topics, "b", "2")
        assert versions(table.catch_up()) == [("b", "2")]
        # a restarted processor reads the whole table again, whatever partitions it owns
        again = KafkaTableReader(kafka, topics.models)
        assert len(again.catch_up()) == 5
        again.close()
    finally:
        table.close()


def test_table_reader_names_a_missing_topic(kafka_settings) -> None:
    settings = kafka_settings()
    assert settings.kafka is not None
    table = KafkaTableReader(settings.kafka, "driftline.no-such-topic", timeout=1)
    try:
        with pytest.raises(DriftlineError, match="no-such-topic.*UNKNOWN_TOPIC"):
            table.catch_up()
    finally:
        table.close()
