"""The batching loop every processor runner shares: poll a batch, run the core, send its outputs,
checkpoint now and then. What a checkpoint commits, and how, is the :class:`Checkpoint`'s business."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from driftline.errors import InvalidEvent
from driftline.transport import Record, Sink
from stream_processors.core.processor import CoreOutput, ProcessorCore
from stream_processors.runners.checkpoint import Checkpoint
from stream_processors.runners.exceptions import RunnerFailed
from stream_processors.runners.flow import InputFlow

__all__ = ["BatchObserver", "BatchRunner", "Poller"]

log = logging.getLogger(__name__)


class Poller(Protocol):
    def poll(self, max_records: int, timeout: float = 0.0) -> list[Record]: ...


class BatchObserver(Protocol):
    """Told of each batch once its outputs were sent, and of each checkpoint (metrics export:
    :class:`driftline.observability.Exporter`); it reads what the core returned, never per record."""

    def observe_batch(self, records: Sequence[Record], out: CoreOutput) -> None: ...

    def observe_checkpoint(self, seconds: float) -> None: ...

    def observe_lag(self, lag: dict[tuple[str, int], int]) -> None: ...


class BatchRunner:
    """Data plane: polls prediction/label batches, runs the core, sends its outputs.

    A checkpoint is taken every ``commit_interval`` seconds and whenever the source runs dry;
    librdkafka sends in the background meanwhile, so the interval trades replay length after a crash
    for throughput, not latency. Any exception while running marks the runner :attr:`failed`: its
    state may be mid-batch, so it never checkpoints again.
    """

    def __init__(
        self,
        core: ProcessorCore,
        source: Poller,
        sink: Sink,
        checkpoint: Checkpoint,
        *,
        batch_size: int = 5000,
        commit_interval: float = 0.0,
        idle_drain_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
        observer: BatchObserver | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if commit_interval < 0:
            raise ValueError(f"commit_interval must be >= 0 seconds, got {commit_interval}")
        self.core, self.source, self.sink = core, source, sink
        self.batch_size, self.commit_interval = batch_size, commit_interval
        self._checkpoint, self._clock = checkpoint, clock
        self.processed = 0
        self.failed = False
        self._last_commit = clock()
        if idle_drain_s is not None and idle_drain_s < 0:
            raise ValueError(f"idle_drain_s must be >= 0 seconds or None, got {idle_drain_s}")
        self.idle_drain_s = idle_drain_s
        self._dry_since: float | None = None
        self.observer = observer
        self.flow: InputFlow | None = None  # a Kafka runner's: no input read far ahead of the other

    def run_once(self, timeout: float = 0.0) -> int:
        """Poll and process one batch; checkpoint if due. Returns the number of records processed."""
        try:
            records = self.source.poll(self.batch_size, timeout)
            if records:
                self._dry_since = None
                out = self._process(records)
                self._send(out)
                if self.observer is not None:
                    self.observer.observe_batch(records, out)
                self._checkpoint.track(records)
                self.processed += len(records)
                if self.flow is not None:
                    self.flow.update()
            elif self._idle_long_enough():
                self.drain()
            if self._checkpoint.pending and (
                not records or self._clock() - self._last_commit >= self.commit_interval
            ):
                self.checkpoint()
        except BaseException:
            self.failed = True
            raise
        return len(records)

    def _send(self, out: CoreOutput) -> None:
        messages = out.messages(self.core.topics)
        many = getattr(self.sink, "send_many", None)  # a Kafka sink takes the batch in one call
        if many is not None:
            return many(messages)  # type: ignore[no-any-return]
        send = self.sink.send
        for topic, key, value, ts in messages:
            send(topic, key, value, ts)

    def _idle_long_enough(self) -> bool:
        """True once the source has been dry for ``idle_drain_s`` with events waiting in the core."""
        if self.idle_drain_s is None or not self.core.waiting:
            return False
        now = self._clock()
        if self._dry_since is None:
            self._dry_since = now
        return now - self._dry_since >= self.idle_drain_s

    def drain(self) -> None:
        """Process what waits in the core for the other input topic (:meth:`ProcessorCore.drain`),
        then checkpoint at once: a drain happens at a wall-clock moment, not at an input position, so
        the state saved right after it is the only one a restart may resume from past it.

        Called when the inputs have been dry for ``idle_drain_s`` (the Kafka runner), or at the end
        of a finite input (the embedded demo, a replay)."""
        try:
            out = self.core.drain()
            self._send(out)
            if self.flow is not None:
                self.flow.update()  # nothing waits now: a paused input resumes
            if self.observer is not None:
                self.observer.observe_batch([], out)
        except BaseException:
            self.failed = True
            raise
        self._dry_since = None
        self._checkpoint.changed()
        self.checkpoint(force=True)

    def _process(self, records: list[Record]) -> CoreOutput:
        """The core's outputs for ``records``. If the core raises on the batch (a bug: bad input is
        dead-lettered inside it), the batch is retried once record by record, on the same state
        (:meth:`ProcessorCore.process_each` says what that costs), and each record that raises again
        is dead-lettered at stage "process": a poison pill never stops a partition."""
        try:
            return self.core.process(records)
        except InvalidEvent:
            raise  # the core's error policy said "raise"
        except Exception as exc:
            if self.core.deferred(exc):
                raise  # nothing was processed (the models topic could not be read): the batch is held
            log.exception(
                "the processor core failed on a batch of %d records; retrying one by one", len(records)
            )
            return self.core.process_each(records)

    def checkpoint(self, *, force: bool = False) -> None:
        """Deliver every output, save state (``force``: now), then commit the inputs (at-least-once)."""
        if self.failed:
            raise RunnerFailed(
                "this runner failed mid-batch and its state may be half-updated: it cannot checkpoint; "
                "start a new one, which resumes from the last checkpoint"
            )
        started = time.perf_counter()
        try:
            self._checkpoint.commit(force=force)
        except BaseException:
            self.failed = True
            raise
        self._last_commit = self._clock()
        if self.observer is not None:
            self.observer.observe_checkpoint(time.perf_counter() - started)
