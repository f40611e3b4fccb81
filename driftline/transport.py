"""Transports: how components exchange bytes. One interface, two implementations.

* :class:`InMemoryBus` -- topics as in-process logs, for the embedded default (``driftline demo``),
  replay and processor tests. Same semantics as Kafka where they matter here: per-topic ordered
  logs, consumer groups with committed offsets, reading a time range.
* ``driftline.kafka`` -- the same interface over confluent-kafka.

Components only see :class:`Sink` (send bytes to a topic) and :class:`Source` (poll batches of
:class:`Record`), so the processor core and the retrain worker never know which one runs them.

>>> bus = InMemoryBus()
>>> sink = bus.sink()
>>> sink.send("t", b"k", b"hello", timestamp=1.0)
>>> src = bus.source(["t"], group="g")
>>> [r.value for r in src.poll(10)]
[b'hello']
>>> src.poll(10)
[]
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = ["InMemoryBus", "Record", "Sink", "Source", "WindowReader"]


@dataclass(frozen=True, slots=True)
class Record:
    """One message as a runner hands it to the core: where it came from, and its bytes."""

    topic: str
    value: bytes
    key: bytes | None = None
    partition: int = 0
    offset: int = -1
    timestamp: float = 0.0


class Sink(Protocol):
    def send(self, topic: str, key: bytes | None, value: bytes, timestamp: float | None = None) -> None: ...

    def flush(self, timeout: float = 10.0) -> int: ...


class Source(Protocol):
    def poll(self, max_records: int, timeout: float = 0.0) -> list[Record]: ...

    def commit(self) -> None: ...

    def close(self) -> None: ...


class WindowReader(Protocol):
    """Reads a topic's records with timestamps at or after ``since`` (the retrain worker's data)."""

    def read_since(self, topic: str, since: float, limit: int) -> list[Record]: ...


class InMemoryBus:
    """Topics as in-process append-only logs (one partition each)."""

    def __init__(self) -> None:
        self._logs: dict[str, list[Record]] = defaultdict(list)
        self._committed: dict[tuple[str, str], int] = {}

    def sink(self) -> _MemorySink:
        return _MemorySink(self)

    def source(self, topics: Sequence[str], group: str) -> _MemorySource:
        return _MemorySource(self, list(topics), group)

    def append(self, topic: str, key: bytes | None, value: bytes, timestamp: float | None) -> None:
        log = self._logs[topic]
        ts = float(timestamp) if timestamp is not None else (log[-1].timestamp if log else 0.0)
        log.append(Record(topic=topic, value=value, key=key, partition=0, offset=len(log), timestamp=ts))

    def log(self, topic: str) -> list[Record]:
        """Every record ever appended to ``topic`` (read-only view for tests and reports)."""
        return list(self._logs.get(topic, ()))

    def read_since(self, topic: str, since: float, limit: int) -> list[Record]:
        log = self._logs.get(topic, [])
        lo, hi = 0, len(log)
        while lo < hi:  # first record with timestamp >= since (timestamps are non-decreasing)
            mid = (lo + hi) // 2
            if log[mid].timestamp < since:
                lo = mid + 1
            else:
                hi = mid
        return log[lo : lo + limit] if limit >= 0 else log[lo:]

    def end_offset(self, topic: str) -> int:
        return len(self._logs.get(topic, ()))


class _MemorySink:
    def __init__(self, bus: InMemoryBus) -> None:
        self._bus = bus

    def send(self, topic: str, key: bytes | None, value: bytes, timestamp: float | None = None) -> None:
        self._bus.append(topic, key, value, timestamp)

    def flush(self, timeout: float = 10.0) -> int:
        return 0


class _MemorySource:
    def __init__(self, bus: InMemoryBus, topics: list[str], group: str) -> None:
        self._bus, self._topics, self._group = bus, topics, group
        self._pos = {t: bus._committed.get((group, t), 0) for t in topics}

    def poll(self, max_records: int, timeout: float = 0.0) -> list[Record]:
        """Up to ``max_records``, shared fairly between the subscribed topics (as a consumer's
        fetches from several partitions interleave), each topic's records in order."""
        out: list[Record] = []
        live = [t for t in self._topics if self._pos[t] < self._bus.end_offset(t)]
        while live and len(out) < max_records:
            share = max(1, (max_records - len(out)) // len(live))
            for t in list(live):
                log = self._bus._logs[t]
                start = self._pos[t]
                chunk = log[start : start + min(share, max_records - len(out))]
                self._pos[t] = start + len(chunk)
                out.extend(chunk)
                if self._pos[t] >= len(log):
                    live.remove(t)
        return out

    def commit(self) -> None:
        for t, pos in self._pos.items():
            self._bus._committed[(self._group, t)] = pos

    def close(self) -> None:
        self.commit()
