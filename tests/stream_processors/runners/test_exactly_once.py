"""Exactly-once on fakes (no broker, ``exactly_once_fakes``): a processor killed at any point, a
transaction aborted under a running processor, or a partition moving to another instance leaves
committed outputs identical to an uninterrupted run's: nothing missing, nothing twice."""

from __future__ import annotations

from collections import Counter

import exactly_once_fakes
import msgspec
import pytest
from events import record
from exactly_once_fakes import (
    KEY,
    SETTINGS,
    TOPICS,
    Broker,
    L,
    Member,
    P,
    TxSink,
    partitioned,
    processor,
    run,
)

from driftline.contracts import Scored, decode
from driftline.kafka_transactions import ProducerFenced, TransactionAborted
from driftline.transport import Record
from stream_processors.core.processor import ProcessorCore
from stream_processors.runners.changelog import ChangelogStore
from stream_processors.runners.checkpoint import CheckpointStore
from stream_processors.runners.kafka import KafkaRunner

logs, reference = exactly_once_fakes.logs, exactly_once_fakes.reference  # the fixtures


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
    log.append(msgspec.structs.replace(chunk, value=chunk.value[:-1] + b"!"))  # one byte changed
    assert store.load(0) is None and "HMAC does not match" in caplog.text
    other = ChangelogStore(Sink(), lambda p: list(log), "state", "g", b"another key, 32 bytes long......")
    store.save(0, {"m": 1}, {P: 3})
    assert other.load(0) is None and store.load(0) == ({"m": 1}, {P: 3})
