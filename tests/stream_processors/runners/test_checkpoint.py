"""Checkpoint objects without a runner: delivery first, then state, then offsets; offsets from the
records processed, seeded by the restored ones; saves throttled by a (fake) clock."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from driftline.errors import DriftlineError
from driftline.transport import Record
from stream_processors.runners.checkpoint import PartitionCheckpoint, SourceCheckpoint
from stream_processors.runners.exceptions import DeliveryError

P, L = "predictions", "labels"


class Committer:
    def __init__(self, journal: list[str]) -> None:
        self.journal = journal
        self.commits: list[dict[tuple[str, int], int]] = []

    def commit(self, offsets: Mapping[tuple[str, int], int] | None = None) -> None:
        assert offsets is not None, "offsets are always explicit"
        self.journal.append("commit")
        self.commits.append(dict(offsets))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def rec(topic: str, partition: int, offset: int) -> Record:
    return Record(topic=topic, value=b"", partition=partition, offset=offset)


@pytest.fixture
def committer(journal: list[str]) -> Committer:
    return Committer(journal)


def test_commit_flushes_then_saves_then_commits_the_next_offsets(sink, store, committer, journal) -> None:
    ckpt = PartitionCheckpoint(sink, committer, lambda p: {"m": p}, store=store)
    ckpt.track([rec(P, 0, 0), rec(L, 0, 0), rec(P, 0, 1), rec(P, 1, 7)])
    assert ckpt.pending == 4
    ckpt.commit()
    assert journal == ["flush", "save 0", "save 1", "commit"]
    assert committer.commits == [{(P, 0): 2, (L, 0): 1, (P, 1): 8}]
    assert store.load(0) == ({"m": 0}, {P: 2, L: 1}) and store.load(1) == ({"m": 1}, {P: 8})
    assert ckpt.pending == 0


@pytest.mark.parametrize("queued, failed", [(3, 0), (0, 2)])
def test_undelivered_outputs_raise_and_nothing_is_saved_or_committed(
    sink, store, committer, journal, queued: int, failed: int
) -> None:
    ckpt = PartitionCheckpoint(sink, committer, lambda p: {}, store=store)
    ckpt.track([rec(P, 0, 0)])
    sink.queued, sink.failed = queued, failed
    with pytest.raises(DeliveryError) as err:
        ckpt.commit(force=True)
    assert isinstance(err.value, DriftlineError) and "NOT committed" in str(err.value)
    assert (err.value.undelivered, err.value.failed) == (queued, failed)
    assert journal == ["flush"] and committer.commits == [] and store.load(0) is None


def test_delivery_failures_before_the_checkpoint_existed_do_not_count(sink, committer) -> None:
    sink.failed = 5
    ckpt = PartitionCheckpoint(sink, committer, lambda p: {})
    ckpt.track([rec(P, 0, 0)])
    ckpt.commit()
    assert committer.commits == [{(P, 0): 1}]


def test_restored_offsets_are_carried_by_the_next_checkpoint(sink, store, committer) -> None:
    store.save(0, {"m": "restored"}, {P: 10, L: 4})
    ckpt = PartitionCheckpoint(sink, committer, lambda p: {"m": "now"}, store=store)
    assert ckpt.restore(0) == {"m": "restored"} and ckpt.offsets(0) == {P: 10, L: 4}
    assert ckpt.restore(1) is None and ckpt.offsets(1) == {}
    ckpt.track([rec(L, 0, 4), rec(L, 0, 5)])  # only labels read
    ckpt.commit(force=True)
    assert store.load(0) == ({"m": "now"}, {P: 10, L: 6})
    assert committer.commits == [{(P, 0): 10, (L, 0): 6}]


def test_saves_are_throttled_unless_forced_or_a_topic_is_new(sink, store, committer, journal) -> None:
    clock = Clock()
    ckpt = PartitionCheckpoint(sink, committer, lambda p: {}, store=store, save_interval=10, clock=clock)
    ckpt.track([rec(L, 0, 0)])
    ckpt.commit()  # never saved: saved whatever the interval
    clock.now += 1
    ckpt.track([rec(L, 0, 1)])
    ckpt.commit()  # not due: offsets committed, state not saved
    assert store.load(0) == ({}, {L: 1})
    ckpt.track([rec(P, 0, 0)])
    ckpt.commit()  # a first offset of predictions: saved now, or a restart would skip them
    assert store.load(0) == ({}, {L: 2, P: 1})
    ckpt.track([rec(P, 0, 1)])
    clock.now += 10
    ckpt.commit()  # due
    assert store.load(0) == ({}, {L: 2, P: 2})
    ckpt.track([rec(P, 0, 2)])
    ckpt.commit(force=True)
    assert store.load(0) == ({}, {L: 2, P: 3})
    assert journal.count("save 0") == 4 and journal.count("commit") == 5


def test_only_changed_offsets_are_committed_and_forgotten_partitions_never(sink, committer) -> None:
    ckpt = PartitionCheckpoint(sink, committer, lambda p: {})
    ckpt.track([rec(P, 0, 0), rec(P, 1, 0)])
    ckpt.commit()
    ckpt.commit(force=True)  # nothing new
    ckpt.track([rec(P, 0, 1), rec(P, 1, 1)])
    ckpt.forget(1)
    ckpt.commit()
    assert committer.commits == [{(P, 0): 1, (P, 1): 1}, {(P, 0): 2}]


def test_negative_save_interval_is_refused(sink, committer) -> None:
    with pytest.raises(ValueError, match="save_interval"):
        PartitionCheckpoint(sink, committer, lambda p: {}, save_interval=-1)


def test_source_checkpoint_commits_only_what_was_delivered(sink, journal) -> None:
    class Source:
        commits = 0

        def commit(self) -> None:
            self.commits += 1

    source = Source()
    ckpt = SourceCheckpoint(sink, source)
    ckpt.track([rec(P, 0, 0)])
    ckpt.commit()
    assert source.commits == 1 and ckpt.pending == 0
    ckpt.track([rec(P, 0, 1)])
    sink.queued = 1
    with pytest.raises(DeliveryError):
        ckpt.commit()
    assert source.commits == 1 and ckpt.pending == 1
