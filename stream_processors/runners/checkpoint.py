"""Checkpoints: the unit of at-least-once progress of a runner.

A :class:`Checkpoint` collects the records a runner has processed since the last one; its
:meth:`~Checkpoint.commit` (1) flushes the sink and raises :class:`DeliveryError` if any output is
undelivered -- the offsets are then *not* committed, so a restart replays those inputs; (2) saves
the state of each input partition with the offsets it reflects, when a store is configured;
(3) commits the input offsets.

* :class:`SourceCheckpoint` -- for sources that track their own positions (the in-memory bus).
* :class:`PartitionCheckpoint` -- for a Kafka consumer: next offsets are tracked per
  (topic, partition) from the records actually processed, seeded by the offsets restored at
  assignment, and committed explicitly.

Topics are keyed by model, so each input partition holds whole models: the state of the models
seen on partition ``p`` (join buffers, reference windows, detectors) is saved together with the
next offsets of partition ``p`` of every input topic, in one file written atomically by the
:class:`CheckpointStore`. A processor that is assigned ``p`` -- after a restart, or in a
rebalance -- loads that file and resumes reading at exactly those offsets, so its state and its
position never disagree: nothing is skipped and nothing counted twice.

>>> import tempfile
>>> store = CheckpointStore(tempfile.mkdtemp(), group="g")
>>> store.save(0, {"churn": {"n": 3}}, {"predictions": 10, "labels": 7})
>>> store.load(0)
({'churn': {'n': 3}}, {'predictions': 10, 'labels': 7})
>>> store.load(1) is None
True
"""

from __future__ import annotations

import os
import pickle
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from driftline.transport import Record, Sink
from stream_processors.runners.exceptions import DeliveryError

__all__ = [
    "Checkpoint",
    "CheckpointStore",
    "OffsetCommitter",
    "PartitionCheckpoint",
    "PositionCommitter",
    "SourceCheckpoint",
]

_FORMAT = 1

Offsets = Mapping[tuple[str, int], int]
"""Next offset to read per (topic, partition)."""


class CheckpointStore:
    """Per input partition: the state of its models and the next offsets of its input topics."""

    def __init__(self, root: str | os.PathLike[str], group: str) -> None:
        self.dir = Path(root) / group
        self.dir.mkdir(parents=True, exist_ok=True)

    def _path(self, partition: int) -> Path:
        return self.dir / f"partition-{partition}.ckpt"

    def save(self, partition: int, models: dict[str, Any], offsets: dict[str, int]) -> None:
        blob = pickle.dumps(
            {"format": _FORMAT, "models": models, "offsets": offsets}, protocol=pickle.HIGHEST_PROTOCOL
        )
        fd, tmp = tempfile.mkstemp(dir=self.dir, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            fh.write(blob)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self._path(partition))

    def load(self, partition: int) -> tuple[dict[str, Any], dict[str, int]] | None:
        path = self._path(partition)
        if not path.exists():
            return None
        data = pickle.loads(path.read_bytes())  # noqa: S301 - our own files, in our own directory
        if data.get("format") != _FORMAT:
            return None
        return data["models"], data["offsets"]


class Checkpoint(Protocol):
    """What a runner needs of a checkpoint."""

    @property
    def pending(self) -> int:
        """Records tracked since the last commit."""
        ...

    def track(self, records: Sequence[Record]) -> None:
        """Note records whose outputs have been handed to the sink."""
        ...

    def commit(self, *, force: bool = False) -> None:
        """Deliver outputs, save state (``force``: ignore any throttle), commit input offsets."""
        ...


class PositionCommitter(Protocol):
    """A source that commits the positions it has read up to itself (the in-memory bus)."""

    def commit(self) -> None: ...


class OffsetCommitter(Protocol):
    """A consumer that commits the offsets it is given (next offset per (topic, partition))."""

    def commit(self, offsets: Offsets | None = None) -> None: ...


@runtime_checkable
class _CountsFailures(Protocol):
    """A sink that counts deliveries that failed after ``send`` returned (KafkaSink)."""

    failed: int


class _Delivery:
    """Flushes a sink; undelivered outputs -- still queued, or failed since the last flush -- raise."""

    def __init__(self, sink: Sink, timeout: float) -> None:
        self.sink, self.timeout = sink, timeout
        self._failed = self._failures()

    def _failures(self) -> int:
        return self.sink.failed if isinstance(self.sink, _CountsFailures) else 0

    def flush(self) -> None:
        queued = self.sink.flush(self.timeout)
        failures = self._failures()
        failed, self._failed = failures - self._failed, failures
        if queued or failed:
            raise DeliveryError(queued, failed, self.timeout)


class SourceCheckpoint:
    """Flush the sink, then let the source commit the positions it has read up to."""

    def __init__(self, sink: Sink, source: PositionCommitter, *, flush_timeout: float = 10.0) -> None:
        self._delivery = _Delivery(sink, flush_timeout)
        self._source = source
        self._pending = 0

    @property
    def pending(self) -> int:
        return self._pending

    def track(self, records: Sequence[Record]) -> None:
        self._pending += len(records)

    def commit(self, *, force: bool = False) -> None:
        self._delivery.flush()
        self._source.commit()
        self._pending = 0


class PartitionCheckpoint:
    """Offsets and state per input partition, committed explicitly to a Kafka consumer.

    ``state(p)`` gives the state of partition ``p`` to save. With a ``store``, state is saved every
    ``save_interval`` s (on ``force`` at once) for the partitions that changed; a partition whose
    offsets of some topic would be committed for the first time is saved at once whatever the
    interval, so a committed offset is never ahead of a partition's saved state for lack of a save.
    """

    def __init__(
        self,
        sink: Sink,
        committer: OffsetCommitter,
        state: Callable[[int], Mapping[str, Any]],
        *,
        store: CheckpointStore | None = None,
        save_interval: float = 10.0,
        flush_timeout: float = 10.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if save_interval < 0:
            raise ValueError(f"save_interval must be >= 0 seconds, got {save_interval}")
        self._delivery = _Delivery(sink, flush_timeout)
        self._committer, self._state, self.store = committer, state, store
        self.save_interval, self._clock = save_interval, clock
        self._next: dict[int, dict[str, int]] = {}  # partition -> topic -> next offset
        self._committed: dict[tuple[str, int], int] = {}
        self._covered: dict[int, set[str]] = {}  # topics whose offsets p's saved state carries
        self._dirty: set[int] = set()  # partitions whose state changed since their last save
        self._pending = 0
        self._last_save = clock()

    @property
    def pending(self) -> int:
        return self._pending

    def restore(self, partition: int) -> dict[str, Any] | None:
        """Take ``partition`` over: the state saved for it (None if there is none), whose offsets
        become its tracked ones -- committed with the next checkpoint even if nothing is read."""
        saved = self.store.load(partition) if self.store is not None else None
        if saved is None:
            self._next.setdefault(partition, {})
            return None
        models, offsets = saved
        self._next[partition] = dict(offsets)
        self._covered[partition] = set(offsets)
        self._dirty.discard(partition)
        return models

    def offsets(self, partition: int) -> dict[str, int]:
        """Next offset per input topic of ``partition``, where known."""
        return dict(self._next.get(partition, {}))

    def forget(self, partition: int) -> None:
        """Stop tracking a partition this instance no longer owns; nothing of it is committed."""
        self._next.pop(partition, None)
        self._covered.pop(partition, None)
        self._dirty.discard(partition)
        for tp in [tp for tp in self._committed if tp[1] == partition]:
            del self._committed[tp]

    def track(self, records: Sequence[Record]) -> None:
        nxt = self._next
        for rec in records:
            if rec.offset >= 0:
                nxt.setdefault(rec.partition, {})[rec.topic] = rec.offset + 1
                self._dirty.add(rec.partition)
        self._pending += len(records)

    def commit(self, *, force: bool = False) -> None:
        self._delivery.flush()
        if self.store is not None:
            self._save(self.store, force)
        else:
            self._dirty.clear()
        offsets = {
            (topic, p): off
            for p, by_topic in self._next.items()
            for topic, off in by_topic.items()
            if self._committed.get((topic, p)) != off
        }
        if offsets:
            self._committer.commit(offsets)
            self._committed.update(offsets)
        self._pending = 0

    def _save(self, store: CheckpointStore, force: bool) -> None:
        due = force or self._clock() - self._last_save >= self.save_interval
        for p in sorted(self._dirty):
            offsets = self._next.get(p, {})
            if due or not offsets.keys() <= self._covered.get(p, set()):
                store.save(p, dict(self._state(p)), dict(offsets))
                self._covered[p] = set(offsets)
                self._dirty.discard(p)
        if due:
            self._last_save = self._clock()
