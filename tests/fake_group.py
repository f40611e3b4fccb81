"""One fake consumer-group member for the runner tests (no broker): in-memory partitioned logs, the
group's committed offsets, and the coordinator's side (assign / revoke / lose) driving the runner's
rebalance listener. Each poll returns the next unread records of one assigned partition (round-robin),
in log order, so a partition's batches do not depend on who reads it.

Used by tests/stream_processors/runners/test_kafka_runner.py (:class:`FakeConsumer`: commits offsets
itself, at-least-once) and tests/exactly_once_fakes.py (``Member``: offsets committed in transactions)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from typing import Any

import msgspec

from driftline.config import Topics
from driftline.transport import Record

INPUTS = (Topics().predictions, Topics().labels)
Logs = dict[int, list[Record]]
Offsets = dict[tuple[str, int], int]


def partitioned(*streams: list[Record]) -> Logs:
    """Stream ``i`` on partition ``i``, in fetch order; offsets numbered per (topic, partition)."""
    logs: Logs = {}
    for p, records in enumerate(streams):
        seen: Counter[str] = Counter()
        logs[p] = []
        for r in records:
            logs[p].append(msgspec.structs.replace(r, partition=p, offset=seen[r.topic]))
            seen[r.topic] += 1
    return logs


class GroupMember:
    """A member of a group over ``logs``; ``group_offsets`` are the group's committed offsets (shared
    by its members: a dict the test, a transaction or :meth:`FakeConsumer.commit` updates)."""

    def __init__(self, logs: Logs, group_offsets: Offsets | None = None) -> None:
        self.logs = logs
        self.group_offsets = {} if group_offsets is None else group_offsets
        self.listener: Any = None
        self.position: Offsets = {}
        self.assigned: list[int] = []
        self._turn = 0

    # -- the coordinator's side --
    def assign(self, partitions: list[int]) -> Offsets:
        """The listener restores the partitions; each is read from where it says, else the committed
        offsets; returns what it said."""
        start = dict(self.listener.on_assign(sorted(partitions)))
        for p in partitions:
            for t in INPUTS:
                self.position[(t, p)] = start.get((t, p), self.group_offsets.get((t, p), 0))
        self.assigned = sorted(set(self.assigned) | set(partitions))
        return start

    def revoke(self, partitions: list[int]) -> None:
        self.listener.on_revoke(sorted(partitions))
        self._drop(partitions)

    def lose(self, partitions: list[int]) -> None:
        self.listener.on_lost(sorted(partitions))
        self._drop(partitions)

    def _drop(self, partitions: list[int]) -> None:
        self.assigned = [p for p in self.assigned if p not in partitions]
        for p in partitions:
            for t in INPUTS:
                self.position.pop((t, p), None)

    def done(self) -> bool:
        """Every record of the assigned partitions has been returned by a poll."""
        pos = self.position
        return all(r.offset < pos[(r.topic, p)] for p in self.assigned for r in self.logs[p])

    # -- the consumer's side --
    def listen(self, listener: Any) -> None:
        self.listener = listener

    def poll(self, max_records: int, timeout: float = 0.0) -> list[Record]:
        for _ in range(len(self.assigned)):
            p = self.assigned[self._turn % len(self.assigned)]
            self._turn += 1
            pos = self.position
            batch = [r for r in self.logs[p] if r.offset >= pos[(r.topic, p)]][:max_records]
            if batch:
                for r in batch:
                    pos[(r.topic, p)] = r.offset + 1
                return batch
        return []

    def seek(self, offsets: Mapping[tuple[str, int], int]) -> None:
        self.position.update(offsets)


class FakeConsumer(GroupMember):
    """An at-least-once member: commits the offsets it is given (kept in :attr:`commits`, noted in
    ``journal``); ``unreachable``: commits that raise a retriable Kafka error first (the group
    coordinator away)."""

    def __init__(
        self,
        logs: Logs,
        committed: Offsets | None = None,
        journal: list[str] | None = None,
        unreachable: int = 0,
    ) -> None:
        super().__init__(logs, committed)
        self.committed = self.group_offsets
        self.journal = [] if journal is None else journal
        self.commits: list[Offsets] = []
        self.closed = False
        self.unreachable = unreachable

    def commit(self, offsets: Mapping[tuple[str, int], int] | None = None) -> None:
        assert offsets is not None, "the runner commits explicit offsets"
        assert all(p in self.assigned for _, p in offsets), "committed a partition it does not own"
        if self.unreachable:
            from confluent_kafka import KafkaError, KafkaException

            self.unreachable -= 1
            raise KafkaException(KafkaError(KafkaError.COORDINATOR_NOT_AVAILABLE, "coordinator away"))
        self.journal.append("commit")
        self.commits.append(dict(offsets))
        self.committed.update(offsets)

    def close(self) -> None:
        if self.assigned:
            self.revoke(list(self.assigned))
        self.closed, self.listener = True, None
