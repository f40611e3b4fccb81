"""Fakes for the exactly-once runner tests (no broker): a fake broker keeps what transactions committed
-- outputs, the group's offsets and changelog snapshots -- and discards what they aborted; a consumer-group
member over its logs; a transactional sink; fake librdkafka producers for :class:`TransactionalSink`
(calls that hang, producers that fence each other); a member that cannot reach its group."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException
from fake_group import GroupMember, partitioned

from driftline.config import MonitorSettings, Topics
from driftline.kafka_retry import RetriesExhausted
from driftline.transport import Record
from stream_processors.core.processor import ProcessorCore
from stream_processors.runners.changelog import ChangelogStore
from stream_processors.runners.checkpoint import CheckpointStore
from stream_processors.runners.kafka import KafkaRunner

TOPICS = Topics()
P, L = TOPICS.predictions, TOPICS.labels
SETTINGS = MonitorSettings(reference_size=1000, window_size=250, metrics_every=250)
Output = tuple[str, bytes | None, bytes, float | None]
KEY = b"0123456789abcdef" * 2


class Broker:
    """What transactions committed: outputs, the group's offsets, changelog snapshots."""

    def __init__(self, logs: dict[int, list[Record]]) -> None:
        self.logs = logs
        self.outputs: list[Output] = []
        self.committed: dict[tuple[str, int], int] = {}
        self.changelog: list[Record] = []  # the changelog topic: what committed transactions wrote


class TxSink:
    """A transactional producer: sends wait in the open transaction until :meth:`commit`.
    ``fail``: commits (by number, from 1) that raise this error instead of committing."""

    def __init__(self, broker: Broker, fail: Mapping[int, Exception] | None = None) -> None:
        self.broker, self.fail = broker, dict(fail or {})
        self.open: list[Output] = []
        self.snapshots: list[Record] = []
        self.attempts = 0

    def send(self, topic: str, key: bytes | None, value: bytes, timestamp: float | None = None) -> None:
        self.open.append((topic, key, value, timestamp))

    def flush(self, timeout: float = 10.0) -> int:
        return 0

    def send_to(self, topic: str, partition: int, key: bytes, value: bytes | None) -> None:
        self.snapshots.append(Record(topic=topic, value=value or b"", key=key, partition=partition))

    def commit(
        self, offsets: Mapping[tuple[str, int], int], group_metadata: object, timeout: float = 60
    ) -> None:
        self.attempts += 1
        if self.attempts in self.fail:
            raise self.fail[self.attempts]
        self.broker.outputs += self.open
        self.broker.committed.update(offsets)
        self.broker.changelog += self.snapshots
        self.open, self.snapshots = [], []

    def abort(self, timeout: float = 60) -> None:
        self.open, self.snapshots = [], []


class Member(GroupMember):
    """A consumer-group member over the broker's logs (:class:`fake_group.GroupMember`), whose offsets
    are committed by transactions only."""

    def __init__(self, broker: Broker) -> None:
        super().__init__(broker.logs, broker.committed)
        self.broker = broker

    def commit(self, offsets: Any = None) -> None:
        raise AssertionError("offsets are committed in transactions")

    def committed(self, keys: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        return {k: self.broker.committed[k] for k in keys if k in self.broker.committed}

    def group_metadata(self) -> object:
        return "member"

    def close(self) -> None:
        if self.assigned:
            self.revoke(list(self.assigned))


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def processor(
    broker: Broker, store_kind: str, tmp_path, fail=None, member: Member | None = None
) -> tuple[KafkaRunner, Member, TxSink, Clock]:
    """A runner committing every 3rd batch and saving state every 7th (so a restore replays)."""
    sink, member, clock = TxSink(broker, fail), member or Member(broker), Clock()
    store: CheckpointStore | ChangelogStore = CheckpointStore(str(tmp_path / "state"), "g")
    if store_kind == "changelog":  # in chunks of 64 KB: a snapshot is several

        def read(p: int) -> list[Record]:
            return [r for r in broker.changelog if r.partition == p]

        store = ChangelogStore(sink, read, "state", "g", KEY, chunk_bytes=65_536)
    core = ProcessorCore(SETTINGS, TOPICS)
    runner = KafkaRunner(
        core, member, sink, store=store, batch_size=300, commit_interval=2.5, save_interval=6.5,
        idle_drain_s=None, clock=clock, transactions=sink,
    )  # fmt: skip
    return runner, member, sink, clock


def run(runner: KafkaRunner, clock: Clock, batches: int = 10**9) -> None:
    """``batches`` polls, or until the member has read everything (a poll of only replayed records
    returns none: that is not the end)."""
    member: Member = runner.consumer  # type: ignore[assignment]
    for _ in range(batches):
        clock.now += 1
        if not runner.run_once() and member.done():
            break


@pytest.fixture
def logs(drifting_stream) -> dict[int, list[Record]]:
    a, _ = drifting_stream(n=2000, at=1200, shift=1.0, seed=0, model="a")
    b, _ = drifting_stream(n=2000, at=900, shift=1.0, seed=1, model="b")
    return partitioned(a, b)


@pytest.fixture
def reference(logs, tmp_path) -> list[Output]:
    broker = Broker(logs)
    runner, member, _, clock = processor(broker, "local", tmp_path / "ref")
    member.assign([0, 1])
    run(runner, clock)
    runner.close()
    assert Counter(t for t, *_ in broker.outputs)[TOPICS.alerts] >= 2  # both drifts are found
    return broker.outputs


class Librdkafka:
    """Fake librdkafka transactional producers over one :class:`Broker`: a transaction's records and
    offsets reach it on commit; ``init_transactions`` fences every earlier producer (their open
    transactions are aborted, their later calls fail fatally). ``hang``: calls, as (name, n-th call of
    that name), that block until :attr:`release` is set -- a coordinator request left waiting."""

    def __init__(self, broker: Broker, hang: set[tuple[str, int]]) -> None:
        self.broker, self.hang = broker, hang
        self.made: list[FakeProducer] = []
        self.calls: Counter[str] = Counter()
        self.release = threading.Event()

    def __call__(self, conf: dict[str, Any]) -> FakeProducer:
        self.made.append(FakeProducer(self))
        return self.made[-1]


class FakeProducer:
    """``queued``: messages produced and not yet sent by a commit or dropped by an abort -- a fenced
    producer keeps them (as librdkafka does) until :meth:`purge`."""

    def __init__(self, lib: Librdkafka) -> None:
        self.lib, self.fenced = lib, False
        self.open: list[Output] = []
        self.offsets: dict[tuple[str, int], int] = {}
        self.queued = self.purged = 0

    def __len__(self) -> int:
        return self.queued

    def purge(self, in_queue: bool = True, in_flight: bool = True, blocking: bool = True) -> None:
        self.purged, self.queued = self.purged + self.queued, 0

    def _enter(self, name: str) -> None:
        self.lib.calls[name] += 1
        if (name, self.lib.calls[name]) in self.lib.hang:
            self.lib.release.wait()
        if self.fenced:
            raise KafkaException(KafkaError(KafkaError._FENCED, "fenced", fatal=True))

    def init_transactions(self, timeout: float) -> None:
        self._enter("init_transactions")
        for other in self.lib.made:
            if other is not self:
                other.fenced, other.open, other.offsets = True, [], {}

    def begin_transaction(self) -> None:
        self._enter("begin_transaction")

    def produce(self, topic: str, value: bytes, key: bytes | None = None, *args: Any, **kw: Any) -> None:
        self._enter("produce")
        self.open.append((topic, key, value, None))
        self.queued += 1

    def poll(self, timeout: float = 0.0) -> int:
        return 0

    def flush(self, timeout: float = 0.0) -> int:
        return 0

    def send_offsets_to_transaction(self, parts: list[Any], group: object, timeout: float) -> None:
        self._enter("send_offsets_to_transaction")
        self.offsets.update({(tp.topic, tp.partition): tp.offset for tp in parts})

    def commit_transaction(self, timeout: float) -> None:
        self._enter("commit_transaction")
        self.lib.broker.outputs += [o for o in self.open if o[0] != "state"]
        self.lib.broker.changelog += [
            Record(topic="state", value=v or b"", key=k) for t, k, v, _ in self.open if t == "state"
        ]
        self.lib.broker.committed.update(self.offsets)
        self.open, self.offsets, self.queued = [], {}, 0

    def abort_transaction(self, timeout: float) -> None:
        self._enter("abort_transaction")
        self.open, self.offsets, self.queued = [], {}, 0


def without_timestamps(outputs: list[Output]) -> list[tuple[str, bytes | None, bytes]]:
    return [(topic, key, value) for topic, key, value, _ in outputs]


class StuckMember(Member):
    """A member whose reads of the committed offsets time out ``stuck`` times (a group coordinator it
    cannot reach after a broker restart), until :meth:`renew` makes a new member of the group, which
    is assigned the same partitions at its next poll."""

    def __init__(self, broker: Broker, stuck: int) -> None:
        super().__init__(broker)
        self.stuck, self.renewed = stuck, 0
        self._reassign: list[int] = []

    def committed(self, keys: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        if self.stuck:
            self.stuck -= 1
            raise RetriesExhausted("reading the committed offsets: Kafka kept answering _TIMED_OUT")
        return super().committed(keys)

    def renew(self) -> None:
        self.renewed += 1
        self._reassign, self.assigned = [0, 1], []  # the group's partitions, all to the new member

    def done(self) -> bool:
        return not self._reassign and super().done()

    def poll(self, max_records: int, timeout: float = 0.0) -> list[Record]:
        if self._reassign:
            parts, self._reassign = self._reassign, []
            self.assign(parts)
        return super().poll(max_records, timeout)
