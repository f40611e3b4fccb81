"""Both runners keep the core's announcements current: when the core meets a batch that names a
version not announced yet, it has them read the models topic up to its end before it changes any
state (:attr:`~stream_processors.core.processor.ProcessorCore.refresh_announcements`) -- after the
batch was polled, so an announcement written before a prediction was produced is known when that
prediction is processed. A batch of announced versions costs no read: asking the broker for the
topic's end on every batch took ~6% of `driftline process` at 8 features.

The models topic is read as a :class:`Table` -- all of it, by every instance, whatever input
partitions it owns (:class:`driftline.kafka_readers.KafkaTableReader` on Kafka, :class:`SourceTable`
over the in-memory bus) -- and never checkpointed: a restarted runner reads it again from the start.
"""

from __future__ import annotations

from typing import Protocol

from driftline.transport import Record
from stream_processors.core.announcements import updates_in
from stream_processors.core.processor import ProcessorCore
from stream_processors.runners.base import Poller

__all__ = ["AnnouncedPoller", "SourceTable", "Table"]


class Table(Protocol):
    """A topic read in full: :meth:`catch_up` returns what was added since its last call, up to the
    topic's end at the moment of the call."""

    def catch_up(self) -> list[Record]: ...

    def close(self) -> None: ...


class SourceTable:
    """A :class:`Table` over a source that reads a topic from its start (an in-memory bus source of
    a group that never commits): :meth:`catch_up` polls it dry."""

    def __init__(self, source: Poller, batch: int = 10_000) -> None:
        self.source, self.batch = source, batch

    def catch_up(self) -> list[Record]:
        out: list[Record] = []
        while chunk := self.source.poll(self.batch):
            out += chunk
        return out

    def close(self) -> None:
        """Nothing to release (and no position to commit: a table is read from its start)."""


class AnnouncedPoller:
    """A :class:`~stream_processors.runners.base.Poller` that brings ``core``'s announcements up to
    the current end of ``table`` whenever the core asks (:meth:`refresh`: a batch it was handed names
    a version it does not know; the table is read after the batch was fetched, so whatever was
    acknowledged on the models topic before those records were produced is in it)."""

    def __init__(self, source: Poller, table: Table, core: ProcessorCore) -> None:
        self.source, self.table, self.core = source, table, core
        self.announced = 0  # model updates read off the table so far
        self._held: list[Record] = []  # polled, but the table could not be read: returned next time
        self._last: list[Record] = []  # the batch returned last, the one the core is processing
        core.refresh_announcements = self.refresh

    def poll(self, max_records: int, timeout: float = 0.0) -> list[Record]:
        """The next records (those held, first: see :meth:`refresh`)."""
        records, self._held = self._held or self.source.poll(max_records, timeout), []
        self._last = records
        return records

    def refresh(self) -> int:
        """:meth:`catch_up`, for the core. If the table cannot be read (the broker away), the batch
        being processed is held -- the consumer's position is past it, the core changed nothing -- and
        returned by the next poll: a runner that rides the outage out loses none of it."""
        try:
            return self.catch_up()
        except Exception:
            self._held = self._last
            raise

    def forget(self, partitions: list[int]) -> None:
        """Drop held records of ``partitions`` (revoked, lost or rewound: read again from elsewhere)."""
        gone = set(partitions)
        self._held = [r for r in self._held if r.partition not in gone]

    def catch_up(self) -> int:
        """Announce what the table gained since the last call; returns how many updates that was."""
        updates = updates_in(self.table.catch_up())
        for update in updates:
            self.core.announce(update)
        self.announced += len(updates)
        return len(updates)
