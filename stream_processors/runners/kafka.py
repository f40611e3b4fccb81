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
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Protocol

from driftline.kafka import RebalanceListener
from driftline.transport import Record, Sink
from stream_processors.core.processor import ProcessorCore
from stream_processors.runners.announced import AnnouncedPoller, Table
from stream_processors.runners.base import BatchRunner
from stream_processors.runners.checkpoint import CheckpointStore, PartitionCheckpoint

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
        store: CheckpointStore | None = None,
        batch_size: int = 5000,
        commit_interval: float = 1.0,
        save_interval: float = 10.0,
        idle_drain_s: float | None = 5.0,
        flush_timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
        announcements: Table | None = None,
    ) -> None:
        self._partitions = PartitionCheckpoint(
            sink,
            consumer,
            core.models_in,
            store=store,
            save_interval=save_interval,
            flush_timeout=flush_timeout,
            clock=clock,
        )
        self.announcements = announcements
        self._announced = None if announcements is None else AnnouncedPoller(consumer, announcements, core)
        super().__init__(
            core,
            consumer if self._announced is None else self._announced,
            sink,
            self._partitions,
            batch_size=batch_size,
            commit_interval=commit_interval,
            idle_drain_s=idle_drain_s,
            clock=clock,
        )
        self.consumer = consumer
        self.flush_timeout = flush_timeout
        self.closed = False
        consumer.listen(self)

    # -- rebalance listener ----------------------------------------------------------------------
    def on_assign(self, partitions: list[int]) -> dict[tuple[str, int], int]:
        """Restore the partitions' saved state; returns where to start reading them (the saved offsets)."""
        start: dict[tuple[str, int], int] = {}
        for p in partitions:
            models = self._partitions.restore(p)
            offsets = self._partitions.offsets(p)
            if models is not None:
                self.core.adopt(p, models)
                log.info("partition %d: restored %d model(s) at offsets %s", p, len(models), offsets)
            start.update({(topic, p): off for topic, off in offsets.items()})
        log.info("assigned input partitions %s; checkpointed start offsets: %s", partitions, start or "none")
        return start

    def on_revoke(self, partitions: list[int]) -> None:
        """Checkpoint (unless failed or closed: :meth:`close` took the last one), then release."""
        try:
            if not self.failed and not self.closed:
                self.checkpoint(force=True)
        finally:
            self._release(partitions)

    def on_lost(self, partitions: list[int]) -> None:
        """Release without a checkpoint: the offsets may already be someone else's to commit."""
        log.warning("partitions %s lost: their state is dropped without a checkpoint", partitions)
        self._release(partitions)

    def _release(self, partitions: list[int]) -> None:
        for p in partitions:
            self._partitions.forget(p)
            self.core.release(p)

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
        restart replays from the last checkpoint). Then the consumer leaves the group."""
        if self.closed:
            return
        try:
            if not self.failed:
                self.checkpoint(force=True)
        finally:
            self.closed = True
            try:
                if self.failed:
                    self.sink.flush(self.flush_timeout)  # best effort: replays are absorbed downstream
            finally:
                try:
                    self.consumer.close()
                finally:
                    if self.announcements is not None:
                        self.announcements.close()
