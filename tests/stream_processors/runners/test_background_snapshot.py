"""Snapshots are sealed by a forked child, off the processing thread: the snapshot written is the state as
it was at the offsets it carries, whatever the processor did meanwhile. A periodic one is the state at the
offsets just committed; a partition's first (or the first carrying a topic) is the state when a commit
found it missing, and that commit waits -- no offset is committed before a snapshot carries its topic. A
forced checkpoint (a rebalance, a stop, a drain) seals at once and replaces a snapshot still being made."""

from __future__ import annotations

import time
from pathlib import Path

from driftline.transport import Record
from stream_processors.runners.checkpoint import CheckpointStore
from stream_processors.runners.transactional import TransactionalCheckpoint


class Txn:
    def __init__(self) -> None:
        self.commits: list[dict] = []

    def commit(self, offsets, group_metadata, timeout: float = 60.0) -> None:
        self.commits.append(dict(offsets))

    def abort(self, timeout: float = 60.0) -> None:
        pass


class Member:
    def group_metadata(self) -> object:
        return None


def read(cp: TransactionalCheckpoint, offset: int, topic: str = "P") -> None:
    cp.track([Record(topic=topic, value=b"", partition=0, offset=offset)])


def made(cp: TransactionalCheckpoint) -> None:
    """Wait until the child sealing partition 0's snapshot is done."""
    deadline = time.monotonic() + 30
    while cp._making[0][0].result() is None and time.monotonic() < deadline:
        time.sleep(0.01)


def setup(tmp_path: Path) -> tuple[dict, CheckpointStore, TransactionalCheckpoint, list[float]]:
    state = {"m": {"n": 1}}
    store = CheckpointStore(tmp_path, "g", b"k" * 32)
    clock = [0.0]
    cp = TransactionalCheckpoint(
        Txn(), Member(), lambda p: state, store=store, save_interval=5.0, clock=lambda: clock[0]
    )
    read(cp, 9)
    cp.commit()  # the partition's first snapshot: a child seals it, the transaction waits for it
    assert store.load(0) is None and cp._txn.commits == [] and cp.waits == 1
    made(cp)
    cp.commit()
    assert store.load(0) == ({"m": {"n": 1}}, {"P": 10}) and cp._txn.commits == [{("P", 0): 10}]
    return state, store, cp, clock


def test_a_first_snapshot_is_made_by_a_child_while_the_transaction_waits(tmp_path: Path) -> None:
    """The processor goes on while the child seals: the commit that finds it made carries the offsets
    read since, and the snapshot the state at its own offsets -- behind the committed ones, as a restore
    expects (it replays from there). A topic read for the first time waits for a snapshot carrying it."""
    state = {"m": {"n": 1}}
    store = CheckpointStore(tmp_path, "g", b"k" * 32)
    cp = TransactionalCheckpoint(Txn(), Member(), lambda p: state, store=store, save_interval=60.0)
    read(cp, 9)
    cp.commit()
    state["m"]["n"] = 2  # processed after the child forked
    read(cp, 19)
    made(cp)
    cp.commit()
    assert cp._txn.commits == [{("P", 0): 20}] and store.load(0) == ({"m": {"n": 1}}, {"P": 10})
    read(cp, 4, topic="L")  # labels, for the first time: their offsets wait for a snapshot carrying them
    read(cp, 29)
    cp.commit()
    assert len(cp._txn.commits) == 1 and store.load(0) == ({"m": {"n": 1}}, {"P": 10})
    made(cp)
    cp.commit()
    assert cp._txn.commits[-1] == {("P", 0): 30, ("L", 0): 5}
    assert store.load(0) == ({"m": {"n": 2}}, {"P": 30, "L": 5}) and cp.waits == 2 and not cp._making


def test_a_failed_child_or_a_long_wait_seals_at_once(tmp_path: Path) -> None:
    """A first snapshot whose child fails is not waited for again, nor one that takes longer than
    ``max_wait_s``: the commit seals it on the processing thread, so outputs are never held for good."""

    class Failing:
        def __init__(self, make) -> None:
            pass

        def result(self) -> bytes | None:
            raise RuntimeError("the child was killed")

        def cancel(self) -> None:
            pass

    class Never(Failing):
        def result(self) -> bytes | None:
            return None

    for child in (Failing, Never):
        store = CheckpointStore(tmp_path / child.__name__, "g", b"k" * 32)
        clock = [0.0]
        cp = TransactionalCheckpoint(
            Txn(), Member(), lambda p: {"m": 1}, store=store, save_interval=60.0, clock=lambda c=clock: c[0]
        )
        cp.child = child
        read(cp, 9)
        cp.commit()
        assert cp._txn.commits == [] and store.load(0) is None
        clock[0] = 10.0
        cp.commit()
        if child is Never:  # still sealing: waited for, up to max_wait_s
            assert cp._txn.commits == []
            clock[0] = cp.max_wait_s + 1
            cp.commit()
        assert cp._txn.commits == [{("P", 0): 10}] and store.load(0) == ({"m": 1}, {"P": 10})


def test_the_background_snapshot_is_the_state_at_its_commit(tmp_path: Path) -> None:
    state, store, cp, clock = setup(tmp_path)
    state["m"]["n"] = 2
    read(cp, 19)
    clock[0] = 10.0
    cp.commit()  # due: after the commit, a child seals the state as it is at offset 20
    assert store.load(0) == ({"m": {"n": 1}}, {"P": 10}) and cp._making
    state["m"]["n"] = 3  # the processor goes on at once
    read(cp, 29)
    made(cp)
    cp.commit()  # writes what the child made, with the next transaction
    assert store.load(0) == ({"m": {"n": 2}}, {"P": 20})
    assert not cp._making


def test_a_forced_checkpoint_replaces_the_snapshot_being_made(tmp_path: Path) -> None:
    state, store, cp, clock = setup(tmp_path)
    state["m"]["n"] = 2
    read(cp, 19)
    clock[0] = 10.0
    cp.commit()
    state["m"]["n"] = 3
    read(cp, 29)
    cp.commit(force=True)  # e.g. after a drain: the state now, sealed now; the older one is dropped
    assert store.load(0) == ({"m": {"n": 3}}, {"P": 30}) and not cp._making


def test_a_slow_snapshot_is_let_land_not_replaced_by_the_next(tmp_path: Path) -> None:
    """On a loaded machine sealing can take longer than the save interval: the next due snapshot waits for
    it instead of cancelling it, or no snapshot would ever land and restores would replay ever more."""

    class Slow:  # a child that finishes when the test says so
        made: list[Slow] = []

        def __init__(self, make) -> None:
            self.raw, self.make, self.done, self.cancelled = None, make, False, False
            self.raw = make()  # the state as it is now, as a fork would see it
            Slow.made.append(self)

        def result(self) -> bytes | None:
            return self.raw if self.done else None

        def cancel(self) -> None:
            self.cancelled = True

    state, store, cp, clock = setup(tmp_path)
    cp.child = Slow
    state["m"]["n"] = 2
    read(cp, 19)
    clock[0] = 10.0
    cp.commit()  # due: the first background snapshot starts (n=2, offset 20)
    state["m"]["n"] = 3
    read(cp, 29)
    clock[0] = 20.0
    cp.commit()  # due again while the first is still sealing: it is kept, not cancelled
    assert len(Slow.made) == 1 and not Slow.made[0].cancelled
    Slow.made[0].done = True
    read(cp, 39)
    clock[0] = 30.0
    cp.commit()  # the first lands; the next one starts from the state now
    assert store.load(0) == ({"m": {"n": 2}}, {"P": 20}) and len(Slow.made) == 2
