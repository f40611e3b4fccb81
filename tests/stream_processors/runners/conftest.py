"""Fakes for runner tests: a sink that can be told to leave outputs undelivered, and a journal of the
I/O steps (flush, save, commit) so tests can check their order."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from stream_processors.runners.checkpoint import CheckpointStore


class FakeSink:
    """Keeps what is sent. ``queued``: outputs a flush leaves undelivered; ``failed``: deliveries
    that failed after ``send`` returned (as KafkaSink counts them)."""

    def __init__(self, journal: list[str]) -> None:
        self.journal = journal
        self.sent: list[tuple[str, bytes | None, bytes, float | None]] = []
        self.queued = 0
        self.failed = 0

    def send(self, topic: str, key: bytes | None, value: bytes, timestamp: float | None = None) -> None:
        self.sent.append((topic, key, value, timestamp))

    def flush(self, timeout: float = 10.0) -> int:
        self.journal.append("flush")
        return self.queued


class JournalStore(CheckpointStore):
    """A real store on disk that also notes each save in the journal."""

    def __init__(self, root: str, group: str, journal: list[str]) -> None:
        super().__init__(root, group)
        self.journal = journal

    def save_sealed(self, partition: int, sealed: bytes) -> None:
        self.journal.append(f"save {partition}")
        super().save_sealed(partition, sealed)


@pytest.fixture
def journal() -> list[str]:
    return []


@pytest.fixture
def sink(journal: list[str]) -> FakeSink:
    return FakeSink(journal)


@pytest.fixture
def new_sink(journal: list[str]) -> Callable[[], FakeSink]:
    return lambda: FakeSink(journal)


@pytest.fixture
def store(tmp_path, journal: list[str]) -> JournalStore:
    return JournalStore(str(tmp_path / "state"), "g", journal)
