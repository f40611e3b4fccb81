"""Periodic snapshots are sealed by a forked child, off the processing thread: the snapshot written is the
state as it was at the offsets just committed, whatever the processor did meanwhile; a forced checkpoint
(a rebalance, a stop, a drain) seals at once and replaces a snapshot still being made."""

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


def read(cp: TransactionalCheckpoint, offset: int) -> None:
    cp.track([Record(topic="P", value=b"", partition=0, offset=offset)])


def setup(tmp_path: Path) -> tuple[dict, CheckpointStore, TransactionalCheckpoint, list[float]]:
    state = {"m": {"n": 1}}
    store = CheckpointStore(tmp_path, "g", b"k" * 32)
    clock = [0.0]
    cp = TransactionalCheckpoint(
        Txn(), Member(), lambda p: state, store=store, save_interval=5.0, clock=lambda: clock[0]
    )
    read(cp, 9)
    cp.commit()  # the partition's first snapshot: sealed at once
    assert store.load(0) == ({"m": {"n": 1}}, {"P": 10})
    return state, store, cp, clock


def test_the_background_snapshot_is_the_state_at_its_commit(tmp_path: Path) -> None:
    state, store, cp, clock = setup(tmp_path)
    state["m"]["n"] = 2
    read(cp, 19)
    clock[0] = 10.0
    cp.commit()  # due: after the commit, a child seals the state as it is at offset 20
    assert store.load(0) == ({"m": {"n": 1}}, {"P": 10}) and cp._making
    state["m"]["n"] = 3  # the processor goes on at once
    read(cp, 29)
    deadline = time.monotonic() + 30
    while cp._making[0][0].result() is None and time.monotonic() < deadline:
        time.sleep(0.01)
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


def test_a_slow_snapshot_is_let_land_not_replaced_by_the_next(tmp_path: Path, monkeypatch) -> None:
    """On a loaded machine sealing can take longer than the save interval: the next due snapshot waits for
    it instead of cancelling it, or no snapshot would ever land and restores would replay ever more."""
    import stream_processors.runners.transactional as transactional

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

    monkeypatch.setattr(transactional, "ForkedSnapshot", Slow)
    state, store, cp, clock = setup(tmp_path)
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
