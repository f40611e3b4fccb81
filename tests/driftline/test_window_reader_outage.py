"""A window read that the broker cuts short is an error, never a shorter window: the retrain worker
would otherwise train on whatever part it got (a model of its own, not the stream's) or miss an
announcement it then publishes twice."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from confluent_kafka import KafkaError

from driftline.config import KafkaSettings
from driftline.kafka_readers import KafkaWindowReader
from driftline.kafka_retry import RetriesExhausted


class Message:
    def __init__(self, partition: int, offset: int, error: KafkaError | None = None) -> None:
        self._p, self._offset, self._error = partition, offset, error

    def error(self) -> KafkaError | None:
        return self._error

    def partition(self) -> int:
        return self._p

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes:
        return b"r%d" % self._offset

    def key(self) -> bytes:
        return b"churn"

    def timestamp(self) -> tuple[int, int]:
        return (1, 1000)


class Consumer:
    """Two partitions of five records each; partition 1 stops answering after ``cut`` records (the
    broker gone), or never (``cut=None``)."""

    def __init__(self, cut: int | None) -> None:
        self.cut, self.batches = cut, 0

    def list_topics(self, topic: str, timeout: float) -> Any:
        return SimpleNamespace(topics={topic: SimpleNamespace(error=None, partitions={0: None, 1: None})})

    def offsets_for_times(self, tps: list[Any], timeout: float) -> list[Any]:
        return [SimpleNamespace(topic=tp.topic, partition=tp.partition, offset=0, error=None) for tp in tps]

    def get_watermark_offsets(self, tp: Any, timeout: float) -> tuple[int, int]:
        return (0, 5)

    def assign(self, parts: list[Any]) -> None:
        pass

    def consume(self, num_messages: int, timeout: float) -> list[Message]:
        self.batches += 1
        if self.batches > 1:
            return []  # nothing more arrives: partition 1 stays unfinished when cut
        last = 5 if self.cut is None else self.cut
        return [Message(0, o) for o in range(5)] + [Message(1, o) for o in range(last)]

    def close(self) -> None:
        pass


def _read(consumer: Consumer) -> list[Any]:
    reader = KafkaWindowReader(
        KafkaSettings(bootstrap_servers="127.0.0.1:9"), consumer=lambda conf: consumer, read_timeout=0.2
    )
    return reader.read_since("driftline.scored", 0.0, -1)


def test_a_read_cut_short_raises_instead_of_returning_part_of_the_window() -> None:
    with pytest.raises(RetriesExhausted, match=r"partitions \[1\] not read to their end"):
        _read(Consumer(cut=2))


def test_a_read_to_the_end_returns_every_record() -> None:
    records = _read(Consumer(cut=None))
    assert sorted((r.partition, r.offset) for r in records) == [(p, o) for p in (0, 1) for o in range(5)]
