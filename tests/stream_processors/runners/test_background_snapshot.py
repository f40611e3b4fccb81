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
