"""Runners: drive a pure component from a :class:`~driftline.transport.Source` to a
:class:`~driftline.transport.Sink`. They own batching, delivery and offsets -- no monitoring logic.

The same runners drive the embedded default (in-memory bus) and Kafka (confluent-kafka source
and sink, batched ``consume``). Delivery is at-least-once: outputs are sent and flushed before
offsets are committed; replays are absorbed downstream (deterministic alert ids, dedup by
prediction id in the join, retrains idempotent on alert id).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from driftline.transport import Sink, Source
from stream_processors.core.processor import ProcessorCore

__all__ = ["ProcessorRunner"]

log = logging.getLogger(__name__)


class ProcessorRunner:
    """Data plane: polls prediction/label batches, runs the core, sends its outputs.

    Outputs are flushed and input offsets committed together (a checkpoint) every
    ``commit_interval`` seconds, when the source runs dry, and on :meth:`close`; librdkafka sends in
    the background meanwhile, so the interval trades replay length after a crash for throughput,
    not latency.
    """

    def __init__(
        self,
        core: ProcessorCore,
        source: Source,
        sink: Sink,
        *,
        batch_size: int = 5000,
        commit_interval: float = 0.0,
        on_checkpoint: Callable[[], None] | None = None,
    ) -> None:
        self.core, self.source, self.sink = core, source, sink
        self.batch_size = batch_size
        self.commit_interval = commit_interval
        self.on_checkpoint = on_checkpoint
        self.processed = 0
        self._uncommitted = 0
        self._last_commit = time.monotonic()

    def run_once(self, timeout: float = 0.0) -> int:
        records = self.source.poll(self.batch_size, timeout)
        if records:
            out = self.core.process(records)
            send = self.sink.send
            for topic, key, value, ts in out.messages(self.core.topics):
                send(topic, key, value, ts)
            self.processed += len(records)
            self._uncommitted += len(records)
        if self._uncommitted and (
            not records or time.monotonic() - self._last_commit >= self.commit_interval
        ):
            self.checkpoint()
        return len(records)

    def checkpoint(self) -> None:
        """Flush every output, save state (if a hook is set), then commit the inputs (at-least-once)."""
        self.sink.flush()
        if self.on_checkpoint is not None:
            self.on_checkpoint()
        self.source.commit()
        self._uncommitted = 0
        self._last_commit = time.monotonic()
