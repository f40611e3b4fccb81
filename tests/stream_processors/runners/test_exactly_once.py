"""Exactly-once on fakes (no broker): a fake broker keeps what transactions committed -- outputs, the
group's offsets and changelog snapshots -- and discards what they aborted. A processor killed at any
point, a transaction aborted under a running processor, or a partition moving to another instance
leaves committed outputs identical to an uninterrupted run's: nothing missing, nothing twice."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException
from events import record

from driftline.config import KafkaSettings, MonitorSettings, Topics
from driftline.contracts import Scored, decode
from driftline.kafka_retry import RetriesExhausted
from driftline.kafka_transactions import ProducerFenced, TransactionAborted, TransactionalSink
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


class Member:
    """A consumer-group member over the broker's logs: each poll returns up to ``max_records`` of one
    assigned partition (round-robin), in log order."""

    def __init__(self, broker: Broker) -> None:
        self.broker = broker
        self.listener: Any = None
        self.position: dict[tuple[str, int], int] = {}
        self.assigned: list[int] = []
        self._turn = 0

    def assign(self, partitions: list[int]) -> None:
        start = self.listener.on_assign(sorted(partitions))
        for p in partitions:
            for t in (P, L):
                self.position[(t, p)] = start.get((t, p), self.broker.committed.get((t, p), 0))
        self.assigned = sorted(set(self.assigned) | set(partitions))

    def revoke(self, partitions: list[int]) -> None:
        self.listener.on_revoke(sorted(partitions))
        self.assigned = [p for p in self.assigned if p not in partitions]

    def done(self) -> bool:
        logs, pos = self.broker.logs, self.position
        return all(r.offset < pos[(r.topic, p)] for p in self.assigned for r in logs[p])

    def listen(self, listener: Any) -> None:
        self.listener = listener

    def poll(self, max_records: int, timeout: float = 0.0) -> list[Record]:
        for _ in range(len(self.assigned)):
            p = self.assigned[self._turn % len(self.assigned)]
            self._turn += 1
            batch = [r for r in self.broker.logs[p] if r.offset >= self.position[(r.topic, p)]][:max_records]
            if batch:
                for r in batch:
                    self.position[(r.topic, p)] = r.offset + 1
                return batch
        return []

    def commit(self, offsets: Any = None) -> None:
        raise AssertionError("offsets are committed in transactions")

    def committed(self, keys: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        return {k: self.broker.committed[k] for k in keys if k in self.broker.committed}

    def group_metadata(self) -> object:
        return "member"

    def seek(self, offsets: Mapping[tuple[str, int], int]) -> None:
        self.position.update(offsets)

    def close(self) -> None:
        if self.assigned:
            self.revoke(list(self.assigned))


class Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def partitioned(*streams: list[Record]) -> dict[int, list[Record]]:
    logs: dict[int, list[Record]] = {}
    for p, records in enumerate(streams):
        seen: Counter[str] = Counter()
        logs[p] = []
        for r in records:
            logs[p].append(dataclasses.replace(r, partition=p, offset=seen[r.topic]))
            seen[r.topic] += 1
    return logs


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


@pytest.mark.parametrize("store", ["local", "changelog"])
@pytest.mark.parametrize("kills", [[7], [8, 5], [1, 7, 11]])
def test_kill_9_anywhere_commits_every_output_exactly_once(logs, reference, tmp_path, store, kills) -> None:
    broker = Broker(logs)
    replayed = 0
    for at in kills:  # killed after ``at`` batches: its open transaction dies with it, nothing is closed
        runner, member, sink, clock = processor(broker, store, tmp_path)
        member.assign([0, 1])
        run(runner, clock, at)
        replayed += runner._replay.replayed
        sink.abort()
    runner, member, _, clock = processor(broker, store, tmp_path)
    member.assign([0, 1])
    run(runner, clock)
    runner.close()
    assert replayed + runner._replay.replayed > 0  # restores did replay committed records
    assert Counter(broker.outputs) == Counter(reference)  # no duplicate, none missing, same bytes


@pytest.mark.parametrize("store", ["local", "changelog"])
def test_an_aborted_transaction_rewinds_and_the_runner_goes_on(logs, reference, tmp_path, store) -> None:
    broker = Broker(logs)
    lost = TransactionAborted("send offsets: UNKNOWN_MEMBER_ID")
    runner, member, sink, clock = processor(broker, store, tmp_path, fail={2: lost, 3: lost, 6: lost})
    member.assign([0, 1])
    run(runner, clock)
    runner.close()
    assert runner.rewinds == 3 and sink.attempts > 6 and not runner.failed
    assert Counter(broker.outputs) == Counter(reference)


def test_a_partition_moves_with_its_join_buffers(make_prediction, make_label, tmp_path) -> None:
    labels_first = [record(make_label(i, model="m")) for i in range(300)]
    labels_first += [record(make_prediction(i, model="m")) for i in range(300)]
    broker = Broker(partitioned([], labels_first))
    first, one, _, clock1 = processor(broker, "changelog", tmp_path)
    second, two, _, clock2 = processor(broker, "changelog", tmp_path)
    one.assign([0, 1])
    run(first, clock1, 1)  # 300 records a batch: read every label, and no prediction
    assert first.processed == 300
    one.revoke([0, 1])  # the rebalance: partition 1 moves to the second instance
    one.assign([0])
    two.assign([1])
    run(second, clock2)
    second.drain()
    second.close()
    first.close()
    scored = [
        decode(Scored, v).prediction.prediction_id for t, _, v, _ in broker.outputs if t == TOPICS.scored
    ]
    assert sorted(scored) == sorted(f"m-{i}" for i in range(300))


def test_restored_offsets_ahead_of_the_committed_ones_are_committed_without_new_input(tmp_path) -> None:
    broker = Broker({0: []})
    store = CheckpointStore(str(tmp_path / "state"), "g")
    store.save(0, {}, {P: 7, L: 3})  # saved by an at-least-once processor; committed: P 5
    broker.committed[(P, 0)] = 5
    sink, member = TxSink(broker), Member(broker)
    runner = KafkaRunner(ProcessorCore(SETTINGS, TOPICS), member, sink, store=store, transactions=sink)
    member.assign([0])
    runner.run_once()
    runner.close()
    assert broker.committed == {(P, 0): 7, (L, 0): 3}


def test_a_fenced_producer_stops_the_runner_and_commits_nothing(logs, tmp_path) -> None:
    broker = Broker(logs)
    fenced = ProducerFenced("another instance runs with the same id")
    runner, member, _, clock = processor(broker, "local", tmp_path, fail={1: fenced})
    member.assign([0, 1])
    with pytest.raises(ProducerFenced):
        run(runner, clock)
    runner.close()
    assert runner.failed and broker.outputs == [] and broker.committed == {}


def test_changelog_keeps_the_latest_snapshot_and_rejects_a_tampered_one(caplog) -> None:
    log: list[Record] = []

    class Sink:
        def send_to(self, topic: str, partition: int, key: bytes, value: bytes | None) -> None:
            log.append(Record(topic=topic, value=value or b"", key=key, partition=partition))

    store = ChangelogStore(Sink(), lambda p: list(log), "state", "g", KEY, chunk_bytes=1000)
    store.save(0, {"m": "x" * 5000}, {P: 1})
    store.save(0, {"m": "y" * 1500}, {P: 2})  # fewer chunks: the others are tombstoned
    assert store.load(0) == ({"m": "y" * 1500}, {P: 2})
    assert [r.value for r in log if r.key == b"g/0/5"][-1] == b""
    chunk = next(r for r in reversed(log) if r.key == b"g/0/1")
    log.append(dataclasses.replace(chunk, value=chunk.value[:-1] + b"!"))  # one byte changed
    assert store.load(0) is None and "HMAC does not match" in caplog.text
    other = ChangelogStore(Sink(), lambda p: list(log), "state", "g", b"another key, 32 bytes long......")
    store.save(0, {"m": 1}, {P: 3})
    assert other.load(0) is None and store.load(0) == ({"m": 1}, {P: 3})


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
    def __init__(self, lib: Librdkafka) -> None:
        self.lib, self.fenced = lib, False
        self.open: list[Output] = []
        self.offsets: dict[tuple[str, int], int] = {}

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

    def produce(self, topic: str, value: bytes, key: bytes | None = None, **kw: Any) -> None:
        self._enter("produce")
        self.open.append((topic, key, value, None))

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
        self.open, self.offsets = [], {}

    def abort_transaction(self, timeout: float) -> None:
        self._enter("abort_transaction")
        self.open, self.offsets = [], {}


def without_timestamps(outputs: list[Output]) -> list[tuple[str, bytes | None, bytes]]:
    return [(topic, key, value) for topic, key, value, _ in outputs]


@pytest.mark.parametrize("hang", [("send_offsets_to_transaction", 3), ("commit_transaction", 4)])
def test_a_transactional_call_that_never_returns_replaces_the_producer(
    logs, reference, tmp_path, hang
) -> None:
    """After a broker restart librdkafka was seen waiting forever in send_offsets_to_transaction: the
    call is abandoned at its deadline, a new producer with the same transactional.id fences the stuck
    one, the runner rewinds, and the committed outputs are the uninterrupted run's -- also once the
    stuck call returns (the fenced producer can no longer commit)."""
    broker = Broker(logs)
    lib = Librdkafka(broker, {hang})
    settings = KafkaSettings(bootstrap_servers="127.0.0.1:9")
    sink = TransactionalSink(settings, "t", call_timeout_s=0.2, grace_s=0.05, producer=lib)
    member, clock = Member(broker), Clock()
    store = CheckpointStore(str(tmp_path / "state"), "g")
    runner = KafkaRunner(
        ProcessorCore(SETTINGS, TOPICS), member, sink, store=store, batch_size=300, commit_interval=2.5,
        save_interval=6.5, idle_drain_s=None, clock=clock, transactions=sink,
    )  # fmt: skip
    member.assign([0, 1])
    try:
        run(runner, clock)
        runner.close()
    finally:
        lib.release.set()  # the stuck call returns: fenced, it commits nothing
    time.sleep(0.1)
    assert sink.replaced >= 1 and len(lib.made) == 1 + sink.replaced and runner.rewinds >= 1
    assert not runner.failed
    assert Counter(without_timestamps(broker.outputs)) == Counter(without_timestamps(reference))


def test_a_queue_that_stays_full_aborts_the_transaction_instead_of_stopping(tmp_path) -> None:
    class Full(FakeProducer):
        def produce(self, topic: str, value: bytes, key: bytes | None = None, **kw: Any) -> None:
            raise BufferError("queue full")

    lib = Librdkafka(Broker({}), set())
    sink = TransactionalSink(
        KafkaSettings(bootstrap_servers="127.0.0.1:9"), "t", producer=lambda conf: Full(lib)
    )
    sink.block_timeout = 0.1
    with pytest.raises(TransactionAborted, match="stayed full"):
        sink.send("scored", b"k", b"v")


def test_inputs_dry_while_the_broker_is_away_are_not_drained(logs, tmp_path) -> None:
    """A drain joins what waits for the other input at a wall-clock moment: only once every owned
    partition is read to its end -- never because the broker, restarting, could not be asked."""
    broker = Broker(logs)
    runner, member, _, clock = processor(broker, "local", tmp_path)
    runner.idle_drain_s = 5.0
    away = True

    def ends(keys: list[tuple[str, int]]) -> dict[tuple[str, int], int] | None:
        if away:
            return None
        return {(t, p): sum(1 for r in broker.logs[p] if r.topic == t) for t, p in keys}

    member.ends = ends  # type: ignore[attr-defined]
    member.assign([0, 1])
    run(runner, clock)
    waiting = runner.core.waiting
    for _ in range(20):  # 20 s dry, the broker away: nothing drained
        clock.now += 1
        runner.run_once()
    assert waiting and runner.core.waiting == waiting
    away = False
    for _ in range(2):
        clock.now += 1
        runner.run_once()
    assert not runner.core.waiting
    runner.close()


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


def test_a_consumer_that_cannot_reach_its_group_is_replaced(logs, reference, tmp_path) -> None:
    broker = Broker(logs)
    lost = TransactionAborted("send offsets: UNKNOWN_MEMBER_ID")
    member = StuckMember(broker, stuck=0)
    runner, _, sink, clock = processor(broker, "local", tmp_path, fail={2: lost}, member=member)
    member.assign([0, 1])
    member.stuck = 2  # the rewind's read fails, then the new member's first one
    run(runner, clock)
    runner.close()
    assert member.renewed == 2 and not runner.failed
    assert Counter(broker.outputs) == Counter(reference)
