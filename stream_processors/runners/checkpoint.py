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

Checkpoints are pickles, so each file carries an HMAC-SHA256 of its bytes under a key that is not a
checkpoint (``DRIFTLINE_STATE__CHECKPOINT_KEY``, or a key file made once, mode 0600, beside the
groups' directories): only verified bytes are unpickled. A file that is truncated, corrupt, from
another key or tampered with is moved aside (``*.rejected-<time>``) with an error that says so,
and that partition starts from its committed offsets with empty state -- the processor keeps running.

>>> path = store.dir / "partition-0.ckpt"
>>> _ = path.write_bytes(path.read_bytes()[:-1] + b"x")  # one byte changed
>>> store.load(0) is None, [p.name.split("-")[1] for p in store.dir.glob("*.rejected-*")]
(True, ['0.ckpt.rejected'])
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import pickle
import secrets
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from driftline.errors import ConfigError
from driftline.transport import Record, Sink
from stream_processors.runners.exceptions import DeliveryError

__all__ = [
    "Checkpoint",
    "CheckpointStore",
    "OffsetCommitter",
    "PartitionCheckpoint",
    "PositionCommitter",
    "SnapshotStore",
    "SourceCheckpoint",
    "seal",
    "unseal",
]

_FORMAT = 2
"""Bumped whenever the core's state changes incompatibly (2: sequential feature drift). A snapshot of
another format is rejected like a corrupt one: the partition is rebuilt by replaying its input from the
start (outputs discarded up to the committed offsets), never restored into objects that no longer fit."""

Offsets = Mapping[tuple[str, int], int]
"""Next offset to read per (topic, partition)."""


_MAGIC = b"DLCKPT1\n"
_MAC_SIZE = 32

log = logging.getLogger(__name__)


class SnapshotStore(Protocol):
    """Where partitions' snapshots live. ``in_transaction``: ``save`` writes into the open Kafka
    transaction (it commits or aborts with the offsets: the changelog topic); else a transactional
    checkpoint calls it only after the commit (the local directory)."""

    in_transaction: bool

    def save(self, partition: int, models: dict[str, Any], offsets: dict[str, int]) -> None: ...

    def seal(self, models: dict[str, Any], offsets: dict[str, int]) -> bytes:
        """The snapshot's bytes (:func:`seal` under the store's key): what :meth:`save_sealed` writes."""
        ...

    def save_sealed(self, partition: int, sealed: bytes) -> None: ...

    def load(self, partition: int) -> tuple[dict[str, Any], dict[str, int]] | None: ...


class CheckpointStore:
    """Per input partition: the state of its models and the next offsets of its input topics,
    authenticated with an HMAC so that nothing but this store's own bytes is ever unpickled."""

    in_transaction = False  # a file: written after the transaction that commits its offsets

    def __init__(self, root: str | os.PathLike[str], group: str, key: bytes | None = None) -> None:
        self.dir = Path(root) / group
        self.dir.mkdir(parents=True, exist_ok=True)
        self._key = key if key else _key_file(Path(root) / ".checkpoint-key")

    def _path(self, partition: int) -> Path:
        return self.dir / f"partition-{partition}.ckpt"

    def seal(self, models: dict[str, Any], offsets: dict[str, int]) -> bytes:
        return seal(self._key, models, offsets)

    def save(self, partition: int, models: dict[str, Any], offsets: dict[str, int]) -> None:
        self.save_sealed(partition, self.seal(models, offsets))

    def save_sealed(self, partition: int, sealed: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.dir, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            fh.write(sealed)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self._path(partition))

    def load(self, partition: int) -> tuple[dict[str, Any], dict[str, int]] | None:
        """The saved state and offsets; None when there is none or it cannot be trusted."""
        path = self._path(partition)
        if not path.exists():
            return None
        data, why = unseal(self._key, path.read_bytes())
        if data is None:
            self._reject(path, why)
            return None
        return data["models"], data["offsets"]

    def _reject(self, path: Path, why: str) -> None:
        aside = path.with_name(f"{path.name}.rejected-{int(time.time())}")
        os.replace(path, aside)
        log.error(
            "checkpoint %s rejected: %s; moved to %s, the partition starts from its committed offsets",
            path,
            why,
            aside.name,
        )


def seal(key: bytes, models: dict[str, Any], offsets: dict[str, int]) -> bytes:
    """A snapshot as bytes: a header, the HMAC-SHA256 under ``key``, the pickle."""
    blob = pickle.dumps({"format": _FORMAT, "models": models, "offsets": offsets}, pickle.HIGHEST_PROTOCOL)
    return _MAGIC + hmac.new(key, blob, hashlib.sha256).digest() + blob


def unseal(key: bytes, raw: bytes) -> tuple[dict[str, Any] | None, str]:
    """(the snapshot, "") if ``raw`` is authentic under ``key`` and readable; else (None, why not).
    Only verified bytes are unpickled."""
    mac, blob = raw[len(_MAGIC) : len(_MAGIC) + _MAC_SIZE], raw[len(_MAGIC) + _MAC_SIZE :]
    if not raw.startswith(_MAGIC) or len(mac) < _MAC_SIZE:
        return None, "not a Driftline checkpoint (wrong header or truncated)"
    if not hmac.compare_digest(mac, hmac.new(key, blob, hashlib.sha256).digest()):
        return None, "its HMAC does not match (corrupt, tampered with, or another key)"
    try:
        data = pickle.loads(blob)  # noqa: S301 - authenticated bytes a store of this key wrote
    except Exception as exc:  # verified but unreadable: written by an incompatible version
        return None, f"it cannot be read ({type(exc).__name__}: {exc})"
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        return None, f"unknown format (this reader knows {_FORMAT})"
    return data, ""


def _key_file(path: Path) -> bytes:
    """The store's HMAC key: made once (32 random bytes, mode 0600), then read."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_bytes()
        if len(key) < 32:
            raise ConfigError(f"checkpoint key file {path} is shorter than 32 bytes: delete it") from None
        return key
    with os.fdopen(fd, "wb") as fh:
        fh.write(secrets.token_bytes(32))
    return path.read_bytes()


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

    def changed(self) -> None:
        """The state of every partition changed without new input (a drain): save it all next time."""
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

    def changed(self) -> None:
        """Nothing to do: this checkpoint saves no state."""


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
        store: SnapshotStore | None = None,
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

    def restore(self, partition: int, not_after: Mapping[str, int] | None = None) -> dict[str, Any] | None:
        """Take ``partition`` over: the state saved for it (None if there is none), whose offsets
        become its tracked ones -- committed with the next checkpoint even if nothing is read.

        ``not_after``: the group's committed offsets (exactly-once). A snapshot past them followed a
        commit the broker then lost (a single broker stopped mid-commit can record a transaction
        complete without writing its markers): its outputs were aborted, so it is not used -- the
        partition is rebuilt from its start, replaying up to the committed offsets."""
        saved = self.store.load(partition) if self.store is not None else None
        if saved is not None and not_after is not None:
            ahead = {t: off for t, off in saved[1].items() if off > not_after.get(t, 0)}
            if ahead:
                log.error(
                    "partition %d: its snapshot is past the group's committed offsets (%s vs %s): a "
                    "commit it followed was lost by the broker -- the partition is rebuilt from its start",
                    partition,
                    ahead,
                    {t: not_after.get(t, "none") for t in ahead},
                )
                saved = None
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

    def changed(self) -> None:
        self._dirty |= set(self._next)

    def track(self, records: Sequence[Record]) -> None:
        last = {(rec.partition, rec.topic): rec.offset for rec in records if rec.offset >= 0}
        nxt = self._next
        for (partition, topic), offset in last.items():  # a partition's records come in offset order
            nxt.setdefault(partition, {})[topic] = offset + 1
            self._dirty.add(partition)
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

    def _save(self, store: SnapshotStore, force: bool) -> None:
        due = force or self._clock() - self._last_save >= self.save_interval
        for p in sorted(self._dirty):
            offsets = self._next.get(p, {})
            if due or not offsets.keys() <= self._covered.get(p, set()):
                store.save(p, dict(self._state(p)), dict(offsets))
                self._covered[p] = set(offsets)
                self._dirty.discard(p)
        if due:
            self._last_save = self._clock()
