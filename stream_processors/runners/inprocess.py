"""The in-process runner: drives the processor core from a :class:`~driftline.transport.Source` to a
:class:`~driftline.transport.Sink` (the embedded demo, replay and processor tests on the in-memory bus).

Delivery is at-least-once: outputs are sent and flushed before offsets are committed; replays are
absorbed downstream (deterministic alert ids, dedup by prediction id in the join, retrains
idempotent on alert id). With ``announcements`` (the models topic as a
:class:`~stream_processors.runners.announced.Table`), the core learns every announcement appended
before a batch's predictions ahead of processing them. The Kafka runner
(:mod:`stream_processors.runners.kafka`) shares the same batching loop,
:class:`~stream_processors.runners.base.BatchRunner`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from driftline.transport import Sink, Source
from stream_processors.core.processor import ProcessorCore
from stream_processors.runners.announced import AnnouncedPoller, Table
from stream_processors.runners.base import BatchRunner
from stream_processors.runners.checkpoint import SourceCheckpoint

__all__ = ["ProcessorRunner"]


class ProcessorRunner(BatchRunner):
    """The batching loop over a source that commits its own positions."""

    def __init__(
        self,
        core: ProcessorCore,
        source: Source,
        sink: Sink,
        *,
        batch_size: int = 5000,
        commit_interval: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        announcements: Table | None = None,
    ) -> None:
        super().__init__(
            core,
            source if announcements is None else AnnouncedPoller(source, announcements, core),
            sink,
            SourceCheckpoint(sink, source),
            batch_size=batch_size,
            commit_interval=commit_interval,
            clock=clock,
        )
