"""The Kafka source's reading of librdkafka's per-message errors (a fake consumer in place of the
librdkafka one: no broker needed)."""

from __future__ import annotations

import logging

import pytest
from confluent_kafka import KafkaError

from driftline.config import KafkaSettings
from driftline.kafka import KafkaSource
from driftline.kafka_retry import ConsumerFailed, RetriesExhausted


class Message:
    def __init__(self, offset: int = 0, error: KafkaError | None = None) -> None:
        self._offset, self._error = offset, error

    def error(self) -> KafkaError | None:
        return self._error

    def topic(self) -> str:
        return "driftline.predictions"

    def value(self) -> bytes:
        return b"{}"

    def key(self) -> bytes:
        return b"m"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def timestamp(self) -> tuple[int, int]:
        return 1, 5_000


class Consumer:
    def __init__(self, batch: list[Message]) -> None:
        self.batch = batch

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Message]:
        out, self.batch = self.batch, []
        return out

    def close(self) -> None:
        pass


@pytest.fixture
def source():
    settings = KafkaSettings(bootstrap_servers="127.0.0.1:1")  # never reached: its logs are silenced
    src = KafkaSource(settings, ["driftline.predictions"], "g", log_level=0)
    real = src._c
    yield src
    real.close()


def test_records_pass_and_a_passing_error_is_logged_not_raised(source, caplog) -> None:
    eof = KafkaError(KafkaError._PARTITION_EOF)
    source._c = Consumer(
        [Message(0), Message(error=KafkaError(KafkaError._TRANSPORT)), Message(1), Message(2, eof)]
    )
    with caplog.at_level(logging.ERROR, logger="driftline.kafka"):
        records = source.poll(10)
    assert [(r.offset, r.timestamp) for r in records] == [(0, 5.0), (1, 5.0)]
    assert source.errors == 1 and "consumer error" in caplog.text  # the end of a partition is no error


def test_a_fatal_error_says_only_a_new_consumer_reads_on(source) -> None:
    fenced = KafkaError(
        KafkaError._FATAL, "Static consumer fenced by other consumer with same group.instance.id"
    )
    source._c = Consumer([Message(0), Message(error=fenced)])
    with pytest.raises(ConsumerFailed, match="fenced") as raised:
        source.poll(10)
    assert isinstance(raised.value, RetriesExhausted)  # what the runners answer with a new consumer
