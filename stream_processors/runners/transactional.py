"""Exactly-once checkpoints: outputs, input offsets and (with a changelog) state in one Kafka transaction.

:class:`TransactionalCheckpoint` is a :class:`~stream_processors.runners.checkpoint.PartitionCheckpoint`
whose :meth:`~TransactionalCheckpoint.commit` is one transaction: the outputs sent since the last
commit, the next input offsets of every partition that moved, and -- with a store that writes into
the transaction (the changelog topic, ``in_transaction``) -- the snapshots due. A store that cannot
(the local directory) is written only *after* the transaction committed, so a snapshot is never
ahead of the committed outputs; a restore then replays from the snapshot's offsets up to the
committed ones (:mod:`~stream_processors.runners.replay`).

Periodic snapshots are taken off the processing thread: right after a transaction commits, a forked
child seals the partition's state as it is at the committed offsets
(:class:`~stream_processors.runners.snapshot.ForkedSnapshot`), and a later commit writes it once it is
ready -- it is never ahead of committed outputs, and a restore replays from it. Forced checkpoints (a
rebalance, a stop, a drain) and a partition's first snapshot are sealed at once, and replace any
snapshot of that partition still being made.

If the transaction cannot commit (:class:`~driftline.kafka_transactions.TransactionAborted`), it is
aborted and the caller rewinds: nothing of it was committed, so every partition goes back to its
committed state.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from stream_processors.runners.checkpoint import Offsets, PartitionCheckpoint, SnapshotStore
from stream_processors.runners.snapshot import ForkedSnapshot

__all__ = ["TransactionalCheckpoint", "Transactions", "TxConsumer"]

log = logging.getLogger(__name__)


class Transactions(Protocol):
    """The producer's side (:class:`~driftline.kafka_transactions.TransactionalSink`)."""

    def commit(self, offsets: Offsets, group_metadata: object, timeout: float = 30.0) -> None: ...

    def abort(self, timeout: float = 30.0) -> None: ...


class TxConsumer(Protocol):
    """The consumer's side: its group's identity for ``send_offsets_to_transaction``."""

    def group_metadata(self) -> object: ...


class TransactionalCheckpoint(PartitionCheckpoint):
    """Per input partition: offsets and snapshots, committed with the outputs in one transaction.

    ``replaying(p)``: whether partition ``p`` is still being replayed -- its state is then behind its
    tracked offsets and is never saved.
    """

    def __init__(
        self,
        transactions: Transactions,
        consumer: TxConsumer,
        state: Callable[[int], Mapping[str, Any]],
        *,
        store: SnapshotStore | None = None,
        replaying: Callable[[int], bool] = lambda p: False,
        save_interval: float = 10.0,
        commit_timeout: float = 30.0,
        background: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            _NoSink(),
            _NoCommitter(),
            state,
            store=store,
            save_interval=save_interval,
            clock=clock,  # type: ignore[arg-type]
        )
        self._txn, self._consumer, self._replaying = transactions, consumer, replaying
        self.commit_timeout = commit_timeout
        self.snapshots = 0
        # (topic, partition) -> the highest next offset a transaction of this process committed: a
        # lower read of the group's is stale or lost (see :meth:`settled`); kept across rewinds.
        self.confirmed: dict[tuple[str, int], int] = {}
        self.settle_s, self.settle_every_s, self.sleep = 20.0, 0.5, time.sleep
        # input partitions one of whose commits the broker lost (see :meth:`settled`): a local snapshot
        # of theirs may be past the group's offsets, and is checked against them when restored
        self.lost: set[int] = set()
        self.background = background
        self._making: dict[int, tuple[ForkedSnapshot, dict[str, int]]] = {}  # partition -> (child, offsets)

    def resume(self, partition: int, start: Mapping[str, int], committed: Mapping[str, int]) -> None:
        """After :meth:`restore`: ``partition`` is read from ``start`` and its group has ``committed``
        these next offsets. It is tracked at the later of the two per topic; a topic whose start is
        ahead of its committed offset (a snapshot older than transactions) is committed next time."""
        self._next[partition] = {t: max(start.get(t, 0), committed.get(t, 0)) for t in {*start, *committed}}
        for t, off in committed.items():
            self._committed[(t, partition)] = off

    def settled(
        self, keys: list[tuple[str, int]], read: Callable[[], Mapping[tuple[str, int], int]]
    ) -> dict[tuple[str, int], int]:
        """The group's committed offsets of ``keys`` (``read()`` asks the broker), read again while one
        is below what this process's own transactions committed, for up to :attr:`settle_s`.

        A lower read is stale while the group coordinator has not applied this process's last
        transaction yet (right after a broker restart); a replay that stopped there would process that
        transaction's records again, outputs included -- committed twice. So it is read again until
        it catches up. One that never does was lost by the broker: a single broker stopped while a
        transaction committed recorded it complete without writing its markers (Kafka 4.4, seen in
        the broker-restart test -- the transaction's outputs were aborted later with the next epoch).
        Then the broker's offsets are the truth, and replaying from them makes the lost outputs again;
        keeping this process's own offsets lost them for good."""

        def behind(out: dict[tuple[str, int], int]) -> list[tuple[str, int]]:
            return [tp for tp in keys if tp in self.confirmed and out.get(tp, -1) < self.confirmed[tp]]

        out = dict(read())
        lagging = behind(out)
        if lagging:
            log.warning(
                "%s: the group's committed offsets read as %s, but this process committed %s: read again "
                "(a coordinator still applying the last transaction after a broker restart?)",
                lagging,
                [out.get(tp, "none") for tp in lagging],
                [self.confirmed[tp] for tp in lagging],
            )
        for _ in range(max(1, round(self.settle_s / self.settle_every_s))):
            if not lagging:
                return out
            self.sleep(self.settle_every_s)
            out = dict(read())
            lagging = behind(out)
        if lagging:
            log.error(
                "%s: the group's committed offsets stayed at %s for %.0f s, below the %s this process's "
                "transactions committed: the broker lost a committed transaction -- its offsets are used, "
                "and what that transaction made is made again",
                lagging,
                [out.get(tp, "none") for tp in lagging],
                self.settle_s,
                [self.confirmed[tp] for tp in lagging],
            )
            self.lost.update(p for _, p in lagging)
            for tp in lagging:  # the next restore does not wait for the lost commit again
                if tp in out:
                    self.confirmed[tp] = out[tp]
                else:
                    del self.confirmed[tp]
        return out

    def commit(self, *, force: bool = False) -> None:
        store = self.store
        saves = self._due(force) if store is not None else []
        self._dirty.difference_update(saves if store is not None else list(self._dirty))
        later = [] if force or not self.background else [p for p in saves if self._covers(p)]
        snapshots = [(p, self._seal_now(p), dict(self._next.get(p, {}))) for p in saves if p not in later]
        snapshots += self._made()
        if store is not None and store.in_transaction:
            for p, sealed, _ in snapshots:
                store.save_sealed(p, sealed)
        offsets: dict[tuple[str, int], int] = {
            (topic, p): off
            for p, by_topic in self._next.items()
            for topic, off in by_topic.items()
            if self._committed.get((topic, p)) != off
        }
        self._txn.commit(offsets, self._consumer.group_metadata(), self.commit_timeout)
        self._committed.update(offsets)
        for tp, off in offsets.items():
            self.confirmed[tp] = max(off, self.confirmed.get(tp, off))
        if store is not None and not store.in_transaction:
            for p, sealed, _ in snapshots:
                store.save_sealed(p, sealed)
        for p, _, offsets_p in snapshots:
            self._covered[p] = set(offsets_p)
        self.snapshots += len(snapshots)
        self._pending = 0
        for p in later:  # the state as it is at the offsets just committed, sealed by a child
            if p in self._making:  # the last one is still being sealed: let it land, take the next later
                self._dirty.add(p)
            else:
                self._start(p)

    def _covers(self, p: int) -> bool:
        """Whether ``p``'s last snapshot covers every topic it has offsets of (else it is sealed now)."""
        return self._next.get(p, {}).keys() <= self._covered.get(p, set())

    def _seal_now(self, p: int) -> bytes:
        self._cancel(p)  # a snapshot being made would be older than this one
        assert self.store is not None
        return self.store.seal(dict(self._state(p)), dict(self._next.get(p, {})))

    def _start(self, p: int) -> None:
        store, models, offsets = self.store, dict(self._state(p)), dict(self._next.get(p, {}))
        assert store is not None
        self._cancel(p)
        self._making[p] = (ForkedSnapshot(lambda: store.seal(models, offsets)), offsets)

    def _made(self) -> list[tuple[int, bytes, dict[str, int]]]:
        """The snapshots whose children are done (a failed child is logged; the next one is due)."""
        done = []
        for p, (snap, offsets) in list(self._making.items()):
            try:
                sealed = snap.result()
            except Exception:
                log.exception("partition %d: the snapshot being made in the background failed", p)
                del self._making[p]
                self._dirty.add(p)
                continue
            if sealed is not None:
                del self._making[p]
                done.append((p, sealed, offsets))
        return done

    def _cancel(self, p: int) -> None:
        making = self._making.pop(p, None)
        if making is not None:
            making[0].cancel()

    def forget(self, partition: int) -> None:
        """Also drop a snapshot of it still being made: the partition is someone else's now."""
        self._cancel(partition)
        super().forget(partition)

    def _due(self, force: bool) -> list[int]:
        """The partitions to snapshot now: changed ones when due (or forced), and any whose offsets
        of some topic would be committed for the first time (a restore then never starts from 0)."""
        due = force or self._clock() - self._last_save >= self.save_interval
        if due:
            self._last_save = self._clock()
        return [
            p
            for p in sorted(self._dirty)
            if not self._replaying(p)
            and (due or not self._next.get(p, {}).keys() <= self._covered.get(p, set()))
        ]


class _NoSink:
    """The transaction delivers the outputs: the parent's flush has nothing to do."""

    def send(self, topic: str, key: bytes | None, value: bytes, timestamp: float | None = None) -> None:
        raise AssertionError("outputs go to the runner's sink")

    def flush(self, timeout: float = 10.0) -> int:
        return 0


class _NoCommitter:
    def commit(self, offsets: Offsets | None = None) -> None:
        raise AssertionError("offsets are committed in the transaction")
