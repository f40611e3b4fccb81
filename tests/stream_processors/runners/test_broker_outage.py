"""A broker restarting under an exactly-once processor, on fakes (``exactly_once_fakes``): a call into
librdkafka that never returns, a producer queue that stays full, a consumer that cannot reach its group,
inputs dry because the broker is away -- the processor goes on, and commits exactly the outputs of an
uninterrupted run. The real broker's version: tests/integration/test_broker_restart_kafka.py."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import exactly_once_fakes
import pytest
from exactly_once_fakes import (
    SETTINGS,
    TOPICS,
    Broker,
    Clock,
    FakeProducer,
    Librdkafka,
    Member,
    StuckMember,
    processor,
    run,
    without_timestamps,
)

from driftline.config import KafkaSettings
from driftline.kafka_retry import ConsumerFailed
from driftline.kafka_transactions import TransactionAborted, TransactionalSink
from stream_processors.core.processor import ProcessorCore
from stream_processors.runners.checkpoint import CheckpointStore
from stream_processors.runners.kafka import KafkaRunner
from stream_processors.runners.transactional import TransactionalCheckpoint

logs, reference = exactly_once_fakes.logs, exactly_once_fakes.reference  # the fixtures


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
    assert all(len(p) == 0 for p in lib.made[:-1])  # nothing left queued in the abandoned producers


def test_an_abandoned_producer_s_queue_is_purged_and_logged(logs, tmp_path, caplog) -> None:
    """A producer abandoned in a stuck call keeps what its aborted transaction queued (librdkafka
    reported ~500 such messages at exit): they are purged on purpose, and the log says so."""
    lib = Librdkafka(Broker(logs), {("send_offsets_to_transaction", 1)})
    sink = TransactionalSink(
        KafkaSettings(bootstrap_servers="127.0.0.1:9"), "t", call_timeout_s=0.2, grace_s=0.05, producer=lib
    )
    for k in range(7):
        sink.send("scored", b"k", b"v%d" % k)
    stuck = lib.made[0]
    try:
        with pytest.raises(TransactionAborted, match="did not return"):
            sink.commit({("predictions", 0): 7}, "member")
        assert stuck.fenced and stuck.purged == 7 and len(stuck) == 0
        sink.send("scored", b"k", b"again")
        stuck.queued = 3  # as if the stuck call had left more behind
        sink.close()
    finally:
        lib.release.set()
    assert len(stuck) == 0 and stuck.purged == 10 and len(lib.made[1]) == 1  # the current one untouched
    said = [r.getMessage() for r in caplog.records if "abandoned producer" in r.getMessage()]
    assert len(said) == 2 and "discarded 3 message(s)" in said[1] and "nothing of it is committed" in said[1]


def test_a_queue_that_stays_full_aborts_the_transaction_instead_of_stopping(tmp_path) -> None:
    class Full(FakeProducer):
        def produce(self, topic: str, value: bytes, key: bytes | None = None, *args: Any, **kw: Any) -> None:
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


class FencedMember(StuckMember):
    """A static member fenced at its ``at``-th poll (after a broker restart the coordinator took its
    own rejoin for another member with its ``group.instance.id``): librdkafka reports a fatal error and
    the consumer reads nothing more; :meth:`renew` makes a new member, assigned the same partitions."""

    def __init__(self, broker: Broker, at: int) -> None:
        super().__init__(broker, stuck=0)
        self.at, self.polls = at, 0

    def poll(self, max_records: int, timeout: float = 0.0) -> list[Any]:
        self.polls += 1
        if self.polls == self.at:
            raise ConsumerFailed("the consumer failed: Static consumer fenced by other consumer")
        return super().poll(max_records, timeout)


def test_a_fenced_static_member_is_replaced_and_changes_no_output(logs, reference, tmp_path) -> None:
    broker = Broker(logs)
    member = FencedMember(broker, at=9)  # after two commits and a snapshot: the rest is replayed
    runner, _, _, clock = processor(broker, "local", tmp_path, member=member)
    member.assign([0, 1])
    run(runner, clock)
    runner.close()
    assert member.renewed == 1 and member.polls > 9 and not runner.failed
    assert Counter(broker.outputs) == Counter(reference)


class StaleMember(Member):
    """A member whose next read of the committed offsets, once :attr:`stale` is set, answers those
    offsets instead of the broker's (a coordinator that has not applied the last transaction yet)."""

    def __init__(self, broker: Broker) -> None:
        super().__init__(broker)
        self.stale: dict[tuple[str, int], int] | None = None

    def committed(self, keys: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        if self.stale is None:
            return super().committed(keys)
        old, self.stale = self.stale, None
        return {k: old[k] for k in keys if k in old}


@pytest.mark.parametrize("failing", [4, 6])
def test_committed_offsets_read_stale_after_an_abort_commit_nothing_twice(
    logs, reference, tmp_path, failing
) -> None:
    """A transaction fails after the one before it committed; the rewind reads the group's offsets as
    they were one transaction earlier. Replaying only up to there would process the last committed
    transaction's records again, outputs included: the offsets are read again until they catch up."""
    broker = Broker(logs)
    member = StaleMember(broker)
    runner, _, sink, clock = processor(
        broker, "local", tmp_path, fail={failing: TransactionAborted("commit: timed out")}, member=member
    )
    commit, before = sink.commit, [dict(broker.committed)]

    def commit_remembering(offsets: Any, group: object, timeout: float = 60) -> None:
        if sink.attempts + 1 == failing:
            member.stale = before[-1]  # as they were before the last committed transaction
        before.append(dict(broker.committed))
        commit(offsets, group, timeout)

    sink.commit = commit_remembering  # type: ignore[method-assign]
    member.assign([0, 1])
    run(runner, clock)
    runner.close()
    assert runner.rewinds == 1 and member.stale is None
    assert Counter(broker.outputs) == Counter(reference)


def test_a_read_below_what_this_process_committed_is_read_again_and_a_lost_commit_is_believed(caplog) -> None:
    """The group's offsets read below what this process's transactions committed: read again while
    they catch up (a coordinator still applying the last transaction); if they never do, the broker
    lost that transaction (its outputs too), so its offsets are used -- the replay makes them again."""
    checkpoint = TransactionalCheckpoint(object(), object(), lambda p: {})  # type: ignore[arg-type]
    slept: list[float] = []
    checkpoint.sleep = slept.append  # type: ignore[method-assign]
    key, other = ("labels", 0), ("predictions", 0)
    checkpoint.confirmed = {key: 8094, other: 6538}
    reads = iter([{key: 898, other: 6538}, {key: 898, other: 6538}, {key: 8094, other: 6538}])
    assert checkpoint.settled([key, other], lambda: next(reads)) == {key: 8094, other: 6538}
    assert len(slept) == 2 and checkpoint.confirmed[key] == 8094  # stale twice, then caught up

    slept.clear()
    assert checkpoint.settled([key, other], lambda: {key: 898, other: 6538}) == {key: 898, other: 6538}
    assert sum(slept) == pytest.approx(checkpoint.settle_s)  # waited the whole bound, then believed it
    assert checkpoint.confirmed[key] == 898  # the next rewind does not wait for the lost commit again
    assert checkpoint.lost == {0}  # its snapshot is checked against the group's offsets when restored
    assert any("lost a committed transaction" in r.getMessage() for r in caplog.records)


def test_a_snapshot_past_the_groups_committed_offsets_is_not_restored(tmp_path, caplog) -> None:
    """A local snapshot is written after its transaction commits; if the broker then lost that commit
    (its outputs aborted), the snapshot is past the group's offsets: restoring it would skip those
    outputs for good, so the partition is rebuilt from its start instead. (Without a lost commit, a
    snapshot ahead is one an at-least-once run saved, and is used: test_exactly_once.)"""
    store = CheckpointStore(tmp_path, "g", b"k" * 32)
    store.save(0, {"churn": {"n": 1}}, {"predictions": 3734, "labels": 398})
    checkpoint = TransactionalCheckpoint(object(), object(), lambda p: {}, store=store)  # type: ignore[arg-type]
    assert checkpoint.restore(0, not_after={"predictions": 3734}) is None  # labels never committed
    assert checkpoint.offsets(0) == {}
    assert any("rebuilt from its start" in r.getMessage() for r in caplog.records)
    assert checkpoint.restore(0, not_after={"predictions": 3734, "labels": 398}) == {"churn": {"n": 1}}
    assert checkpoint.offsets(0) == {"predictions": 3734, "labels": 398}
