"""The Kafka runner: the shared batching loop over a consumer-group member, plus the rebalance
protocol -- what to do when input partitions are assigned, revoked or lost.

* assigned: restore each partition's saved state into the core; its saved offsets are where the
  consumer starts reading (they override the committed ones), so state and position agree.
* revoked: checkpoint (outputs delivered, state saved, offsets committed), then drop the
  partitions' state -- unless the runner failed mid-batch: then its state is never saved.
* lost: drop the partitions' state without a checkpoint -- they may already belong to someone else.

With ``announcements`` (the models topic as a table: :class:`driftline.kafka_readers.KafkaTableReader`),
each polled batch is processed only once the table was read up to its high watermarks, so every
announcement acknowledged before the batch's predictions were produced is known to the core.

The consumer is anything that satisfies :class:`Consumer` (:class:`driftline.kafka.KafkaSource`, or
a fake one in tests, which drives assign / revoke / lost / consume without a broker).

With ``transactions`` (a :class:`~driftline.kafka_transactions.TransactionalSink`, exactly-once), the
outputs, input offsets and changelog snapshots of each checkpoint commit in one transaction
(:mod:`~stream_processors.runners.transactional`), and:

* assigned: the snapshot is restored, the partition is read from the snapshot's offsets and replayed
  up to the group's committed offsets with outputs discarded (:mod:`~stream_processors.runners.replay`);
* a transaction that cannot commit -- a broker restarting, the group's generation changing under it
  -- is aborted, and every owned partition is rewound as if it had just been assigned: no exit,
  nothing lost, nothing twice. A fenced producer (another instance with the same id) stops the runner.

Without transactions (at-least-once), a broker outage is ridden out too
(:mod:`~stream_processors.runners.outage`): outputs a flush leaves queued stay in the producer, the
offsets are not committed, nothing new is polled, and the checkpoint is tried again with a bounded
backoff until the broker is back; a batch polled while the models topic cannot be read is held.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from driftline.kafka import RebalanceListener
from driftline.kafka_retry import RetriesExhausted
from driftline.kafka_transactions import TransactionAborted
from driftline.transport import Record, Sink
from stream_processors.core.processor import CoreOutput, ProcessorCore
from stream_processors.runners.announced import AnnouncedPoller, Table
from stream_processors.runners.base import BatchRunner, Poller
from stream_processors.runners.checkpoint import PartitionCheckpoint, SnapshotStore
from stream_processors.runners.flow import InputFlow
from stream_processors.runners.outage import Outage, passing, send_patiently
from stream_processors.runners.replay import ReplayPoller
from stream_processors.runners.transactional import TransactionalCheckpoint, Transactions

__all__ = ["Consumer", "KafkaRunner"]

log = logging.getLogger(__name__)


class Consumer(Protocol):
    """What the Kafka runner needs of a consumer-group member."""

    def listen(self, listener: RebalanceListener) -> None:
        """Send rebalance events to ``listener``; they happen inside :meth:`poll` (and :meth:`close`)."""
        ...

    def poll(self, max_records: int, timeout: float = 0.0) -> list[Record]: ...

    def commit(self, offsets: Mapping[tuple[str, int], int] | None = None) -> None:
        """Commit ``offsets``: the next offset to read per (topic, partition)."""
        ...

    def close(self) -> None:
        """Leave the group (revoking what is assigned) and stop sending rebalance events."""
        ...


class TxConsumer(Consumer, Protocol):
    """What the Kafka runner needs of a consumer in exactly-once mode."""

    def committed(self, keys: list[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """The group's committed next offsets of ``keys`` (those never committed left out)."""
        ...

    def group_metadata(self) -> object: ...

    def seek(self, offsets: Mapping[tuple[str, int], int]) -> None: ...


class KafkaRunner(BatchRunner):
    """Drives a :class:`ProcessorCore` from a consumer to a sink, with checkpoints per input partition.

    Offsets are committed every ``commit_interval`` s and whenever the consumer runs dry; with a
    ``store``, each changed partition's state is saved with its offsets every ``save_interval`` s, on
    a rebalance and on :meth:`close`. Once the inputs have been dry for ``idle_drain_s`` s, events
    waiting in the core for the other input topic are processed (:meth:`BatchRunner.drain`).
    """

    def __init__(
        self,
        core: ProcessorCore,
        consumer: Consumer,
        sink: Sink,
        *,
        store: SnapshotStore | None = None,
        batch_size: int = 5000,
        commit_interval: float = 1.0,
        save_interval: float = 10.0,
        idle_drain_s: float | None = 5.0,
        flush_timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        announcements: Table | None = None,
        transactions: Transactions | None = None,
    ) -> None:
        self._txn = transactions
        self.announcements = announcements
        self._announced = None if announcements is None else AnnouncedPoller(consumer, announcements, core)
        poller: Poller = consumer if self._announced is None else self._announced
        self._replay = ReplayPoller(poller, core)
        self._partitions: PartitionCheckpoint
        if transactions is None:
            self._partitions = PartitionCheckpoint(
                sink,
                consumer,
                core.models_in,
                store=store,
                save_interval=save_interval,
                flush_timeout=flush_timeout,
                clock=clock,
            )
        else:
            self._partitions = TransactionalCheckpoint(
                transactions,
                consumer,  # type: ignore[arg-type]
                core.models_in,
                store=store,
                replaying=self._replay.active,
                save_interval=save_interval,
                clock=clock,
            )
        self._inputs = (core.topics.predictions, core.topics.labels)
        self._owned: set[int] = set()
        self.rewinds = 0
        self.outage = Outage(clock=clock)  # at-least-once: the retries while the broker is away
        super().__init__(
            core,
            poller if transactions is None else self._replay,
            sink,
            self._partitions,
            batch_size=batch_size,
            commit_interval=commit_interval,
            idle_drain_s=idle_drain_s,
            clock=clock,
        )
        self.consumer = consumer
        self.flow = InputFlow(consumer, core) if hasattr(consumer, "pause") else None  # type: ignore[arg-type]
        self.flush_timeout, self.closed = flush_timeout, False
        consumer.listen(self)

    lag_interval = 10.0  # seconds between two measures of the consumer lag (with an observer)
    _lag_at = float("-inf")

    # -- rebalance listener ----------------------------------------------------------------------
    def on_assign(self, partitions: list[int]) -> dict[tuple[str, int], int]:
        """Restore the partitions' saved state; returns where to start reading them (the saved offsets)."""
        self._owned |= set(partitions)
        if self._txn is not None:
            start = self._take_all(partitions)
        else:
            start = {}
            for p in partitions:
                models = self._partitions.restore(p)
                offsets = self._partitions.offsets(p)
                if models is not None:
                    self.core.adopt(p, models)
                    log.info("partition %d: restored %d model(s) at offsets %s", p, len(models), offsets)
                start.update({(topic, p): off for topic, off in offsets.items()})
        log.info("assigned input partitions %s; checkpointed start offsets: %s", partitions, start or "none")
        return start

    def _take_all(self, partitions: list[int]) -> dict[tuple[str, int], int]:
        """Exactly-once: restore each partition's snapshot, start reading at its offsets and replay up
        to the group's committed ones. Without a snapshot store, read on from the committed offsets."""
        consumer: TxConsumer = self.consumer  # type: ignore[assignment]
        keys = [(t, p) for p in partitions for t in self._inputs]
        committed = self._partitions.settled(keys, lambda: consumer.committed(keys))  # type: ignore[attr-defined]
        start: dict[tuple[str, int], int] = {}
        for p in partitions:
            done = {t: committed[(t, p)] for t in self._inputs if (t, p) in committed}
            lost = p in self._partitions.lost  # type: ignore[attr-defined]
            models = self._partitions.restore(p, not_after=done if lost else None)
            saved = self._partitions.offsets(p)
            if models is not None:
                self.core.adopt(p, models)
            if self._partitions.store is None:
                from_ = {}
            elif models is not None:
                from_ = {t: saved.get(t, 0) for t in self._inputs}
            else:  # no snapshot: the committed state is rebuilt from the start of the partition
                from_ = {t: 0 for t in done}
            self._partitions.resume(p, from_, done)  # type: ignore[attr-defined]
            self._replay.start(p, {t: off for t, off in done.items() if t in from_ and from_[t] < off})
            start.update({(t, p): off for t, off in from_.items()})
            log.info(
                "partition %d: restored %d model(s) at offsets %s, committed %s",
                p,
                len(models or {}),
                saved or "none",
                done or "none",
            )
        return start

    def on_revoke(self, partitions: list[int]) -> None:
        """Checkpoint (unless failed or closed: :meth:`close` took the last one), then release."""
        try:
            if not self.failed and not self.closed:
                self._checkpoint_or_abort()
        finally:
            self._release(partitions)

    def on_lost(self, partitions: list[int]) -> None:
        """Release without a checkpoint: the offsets may already be someone else's to commit. In a
        transaction, their outputs are mixed with the other partitions': abort, and rewind the rest."""
        log.warning("partitions %s lost: their state is dropped without a checkpoint", partitions)
        self._release(partitions)
        if self._txn is not None and not self.failed:
            self._rewind("partitions lost")

    def _release(self, partitions: list[int]) -> None:
        if self._announced is not None:
            self._announced.forget(partitions)
        for p in partitions:
            self._owned.discard(p)
            self._replay.forget(p)
            self._partitions.forget(p)
            self.core.release(p)

    # -- exactly-once recovery -------------------------------------------------------------------
    def run_once(self, timeout: float = 0.0) -> int:
        """:meth:`BatchRunner.run_once`; a transaction that cannot commit is aborted and every owned
        partition rewound to its committed state (:meth:`_rewind`) -- the runner goes on. At-least-once:
        :meth:`_ride_out`."""
        if self._txn is None:
            return self._ride_out(timeout)
        try:
            return super().run_once(timeout)
        except TransactionAborted as exc:
            self.failed = False  # nothing of the state survives the rewind: it is the committed one
            try:
                self._rewind(str(exc))
            except RetriesExhausted as stuck:
                self._start_over(str(stuck))
            return 0
        except RetriesExhausted as exc:  # e.g. the committed offsets, read on an assignment
            if self._txn is None or not hasattr(self.consumer, "renew"):
                raise
            self.failed = False
            self._start_over(str(exc))
            return 0

    # -- at-least-once across an outage ---------------------------------------------------------
    def _ride_out(self, timeout: float) -> int:
        """:meth:`BatchRunner.run_once`, unless the broker is away (:func:`passing` errors): then
        nothing new is polled; the checkpoint (flush, save, commit) is tried again when
        :attr:`outage`'s backoff says so, and processing resumes once it succeeds."""
        try:
            if self.outage.active:
                if not self.outage.wait(timeout):
                    return 0
                if self._partitions.pending:
                    self.checkpoint()
            n = BatchRunner.run_once(self, timeout)
        except Exception as exc:
            if not passing(exc):
                raise
            self.failed = False  # raised at a batch boundary: the state is whole, its outputs queued
            self.outage.failed(exc)
            return 0
        self.outage.over()
        return n

    def _send(self, out: CoreOutput) -> None:
        """At-least-once: :func:`~stream_processors.runners.outage.send_patiently` (a full queue never
        stops a batch half sent); in a transaction the sink aborts it instead."""
        if self._txn is not None:
            return super()._send(out)
        send_patiently(self.sink, out.messages(self.core.topics))

    def _checkpoint_or_abort(self) -> None:
        try:
            self.checkpoint(force=True)
        except TransactionAborted as exc:
            self.failed = False
            self._rewind(str(exc))

    def _rewind(self, why: str) -> None:
        """Abort the open transaction; restore every owned partition's committed state (snapshot +
        replay) and read it again from there."""
        assert self._txn is not None
        self.rewinds += 1
        owned = sorted(self._owned)
        log.warning("transaction aborted (%s): partitions %s go back to their committed state", why, owned)
        self._txn.abort()
        self._release(owned)
        self._owned = set(owned)
        if not owned:
            return
        start = self._take_all(owned)
        consumer: TxConsumer = self.consumer  # type: ignore[assignment]
        committed = self._partitions.offsets  # resume() set them: the later of start and committed
        seek = {(t, p): start.get((t, p), committed(p).get(t, 0)) for p in owned for t in self._inputs}
        consumer.seek(seek)

    def _start_over(self, why: str) -> None:
        """The consumer cannot reach its group (after a broker restart librdkafka was seen timing out
        on every request to a coordinator it had dropped): abort, drop every partition's state and
        replace the consumer; the new one joins the group and each partition it is assigned is
        restored to its committed state (:meth:`on_assign`)."""
        assert self._txn is not None
        log.warning("the consumer cannot reach its group (%s): it is replaced by a new one", why)
        try:
            self._txn.abort()
        except TransactionAborted as exc:  # the next transaction finds out; nothing is committed now
            log.warning("abort before the consumer is replaced: %s", exc)
        self._release(sorted(self._owned))
        self.consumer.renew()  # type: ignore[attr-defined]

    def _idle_long_enough(self) -> bool:
        """No drain while a partition is replayed (its state is behind its committed offsets), nor
        before every owned input partition has been read to its end: inputs dry because the broker is
        away (a restart) are not idle, and a drain then would join at a moment an uninterrupted run
        never does."""
        return not self._replay.replaying and super()._idle_long_enough() and self._read_to_end()

    def _read_to_end(self) -> bool:
        """Whether every owned input partition has been processed up to its end offsets (asked of
        the broker: False when it cannot answer). A consumer that cannot tell (a fake) says yes."""
        ends = getattr(self.consumer, "ends", None)
        if ends is None or not self._owned:
            return True
        keys = [(t, p) for p in sorted(self._owned) for t in self._inputs]
        found: Mapping[tuple[str, int], int] | None = ends(keys)
        if found is None:
            return False
        return all(self._partitions.offsets(p).get(t, 0) >= found.get((t, p), 0) for t, p in keys)

    def checkpoint(self, *, force: bool = False) -> None:
        """:meth:`BatchRunner.checkpoint`; with an :attr:`observer`, the consumer lag is measured after it at
        most every ``lag_interval`` s (it asks the broker for the end offsets)."""
        super().checkpoint(force=force)
        if self.observer is not None and self._clock() - self._lag_at >= self.lag_interval:
            self._lag_at = self._clock()
            lag = self.lag()
            if lag is not None:
                self.observer.observe_lag(lag)

    def lag(self) -> dict[tuple[str, int], int] | None:
        """Records not yet processed per owned input (topic, partition); None when the broker cannot say."""
        ends = getattr(self.consumer, "ends", None)
        keys = [(t, p) for p in sorted(self._owned) for t in self._inputs]
        found: Mapping[tuple[str, int], int] | None = ends(keys) if ends is not None else None
        if found is None:
            return None
        return {(t, p): max(0, found.get((t, p), 0) - self._partitions.offsets(p).get(t, 0)) for t, p in keys}

    # -- lifecycle -------------------------------------------------------------------------------
    def run(self, stop: Callable[[], bool], timeout: float = 0.5) -> None:
        """Process batches until ``stop()``; then :meth:`close` (also when an error stops the loop).
        The models topic is read once before the first poll: its start-up (~1 s: assignment, first
        fetch) is not paid by a batch, and what was announced before the start is known at once."""
        try:
            if self._announced is not None:
                self._announced.catch_up()
            while not stop():
                self.run_once(timeout)
        finally:
            self.close()

    def close(self) -> None:
        """A clean stop checkpoints what it processed; a failed runner only sends what it has (a
        restart replays from the last checkpoint) -- or, in a transaction, aborts it. Then the
        consumer leaves the group."""
        if self.closed:
            return
        try:
            if not self.failed:
                self._checkpoint_or_abort() if self._txn is not None else self.checkpoint(force=True)
        finally:
            self.closed = True
            try:
                if self.failed and self._txn is not None:
                    self._txn.abort()
                elif self.failed:
                    self.sink.flush(self.flush_timeout)  # best effort: replays are absorbed downstream
            finally:
                try:
                    self.consumer.close()
                finally:
                    if self.announcements is not None:
                        self.announcements.close()
                    getattr(self._txn, "close", lambda: None)()  # purges abandoned producers' queues
