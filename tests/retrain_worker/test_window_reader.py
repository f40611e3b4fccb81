"""The worker's window reader rides out a leader moving (retried with a growing backoff) and stops
with an error that names the fix when Kafka refuses for good."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from driftline.config import KafkaSettings
from driftline.errors import DriftlineError
from driftline.kafka_readers import KafkaWindowReader
from driftline.kafka_retry import Backoff, is_retriable

TOPIC = "driftline.scored"


class Message:
    def __init__(self, offset: int, value: bytes | None = None, error: KafkaError | None = None) -> None:
        self._offset, self._value, self._error = offset, value, error

    def error(self) -> KafkaError | None:
        return self._error

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes | None:
        return self._value

    def key(self) -> bytes:
        return b"churn"

    def timestamp(self) -> tuple[int, int]:
        return (1, 1000 * (self._offset + 1))


class FakeConsumer:
    """One partition holding three records; ``offsets_for_times`` answers with ``failures`` first
    (raised, or as the partition's error when ``per_partition``)."""

    def __init__(self, failures: list[KafkaError], *, per_partition: bool = False) -> None:
        self.failures, self.per_partition = list(failures), per_partition
        self.asked, self.closed = 0, False
        self._delivered = False

    def list_topics(self, topic: str, timeout: float) -> Any:
        return SimpleNamespace(topics={topic: SimpleNamespace(error=None, partitions={0: None})})

    def offsets_for_times(self, tps: list[Any], timeout: float) -> list[Any]:
        self.asked += 1
        error = self.failures.pop(0) if self.failures else None
        if error is not None and not self.per_partition:
            raise KafkaException(error)
        return [SimpleNamespace(topic=tp.topic, partition=tp.partition, offset=1, error=error) for tp in tps]

    def get_watermark_offsets(self, tp: Any, timeout: float) -> tuple[int, int]:
        return (0, 3)

    def assign(self, parts: list[Any]) -> None:
        self.assigned = [(p.partition, p.offset) for p in parts]

    def consume(self, num_messages: int, timeout: float) -> list[Message]:
        if self._delivered:
            return []
        self._delivered = True
        eof = KafkaError(KafkaError._PARTITION_EOF)
        return [Message(1, b"r1"), Message(2, b"r2"), Message(3, error=eof)]

    def close(self) -> None:
        self.closed = True


def _reader(consumer: FakeConsumer, waits: list[float], attempts: int = 4) -> KafkaWindowReader:
    backoff = Backoff(attempts=attempts, initial=0.5, maximum=1.5, sleep=waits.append)
    return KafkaWindowReader(
        KafkaSettings(bootstrap_servers="127.0.0.1:9"), backoff=backoff, consumer=lambda conf: consumer
    )


NOT_LEADER = KafkaError(KafkaError.NOT_LEADER_FOR_PARTITION)


@pytest.mark.parametrize("per_partition", [False, True], ids=["raised", "partition-error"])
def test_a_leader_moving_is_retried_with_a_growing_backoff(per_partition: bool) -> None:
    consumer, waits = FakeConsumer([NOT_LEADER, NOT_LEADER], per_partition=per_partition), []
    records = _reader(consumer, waits).read_since(TOPIC, 0.0, -1)
    assert [(r.offset, r.value) for r in records] == [(1, b"r1"), (2, b"r2")]  # from offsets_for_times on
    assert consumer.asked == 3 and waits == [0.5, 1.0]
    assert consumer.closed


def test_a_leader_that_never_comes_back_gives_up_with_the_reason() -> None:
    consumer, waits = FakeConsumer([NOT_LEADER] * 10), []
    with pytest.raises(
        DriftlineError, match=r"kept answering NOT_LEADER_FOR_PARTITION \(.*\) after 4 attempts"
    ):
        _reader(consumer, waits).read_since(TOPIC, 0.0, -1)
    assert consumer.asked == 4 and waits == [0.5, 1.0, 1.5]  # bounded: never longer than the maximum
    assert consumer.closed


@pytest.mark.parametrize(
    "code, fix",
    [
        (KafkaError.TOPIC_AUTHORIZATION_FAILED, "grant this client's principal Describe and Read"),
        (KafkaError.SASL_AUTHENTICATION_FAILED, "check the user and password"),
        (KafkaError.INVALID_REQUEST, "check the Kafka settings"),
    ],
)
def test_an_error_that_will_not_pass_is_not_retried(code: int, fix: str) -> None:
    consumer, waits = FakeConsumer([KafkaError(code)]), []
    with pytest.raises(DriftlineError, match=f"reading {TOPIC} at 127.0.0.1:9 failed: .*{fix}"):
        _reader(consumer, waits).read_since(TOPIC, 0.0, -1)
    assert consumer.asked == 1 and waits == []


def test_what_counts_as_retriable() -> None:
    assert is_retriable(KafkaException(NOT_LEADER))
    assert is_retriable(KafkaException(KafkaError(KafkaError._TRANSPORT)))
    # a query in flight when the broker is killed: its connection torn down, not the client's
    assert is_retriable(KafkaException(KafkaError(KafkaError._DESTROY_BROKER)))
    assert not is_retriable(KafkaException(KafkaError(KafkaError._DESTROY)))  # our own client closed
    assert is_retriable(KafkaException(KafkaError(KafkaError.INVALID_REQUEST, "x", retriable=True)))
    assert not is_retriable(KafkaException(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED)))
    assert not is_retriable(ValueError("not Kafka's"))
