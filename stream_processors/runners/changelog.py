"""Snapshots on a compacted Kafka topic: state that follows a partition to whichever instance owns it.

:class:`ChangelogStore` writes the snapshot of input partition ``p`` to partition ``p`` of the
changelog topic (``cleanup.policy=compact``) *inside the open transaction* (``in_transaction``): it
commits or aborts with the outputs and offsets it reflects. A snapshot is sealed like a local
checkpoint (HMAC-SHA256 under ``DRIFTLINE_STATE__CHECKPOINT_KEY``: only verified bytes are unpickled)
and cut into chunks under the 1 MB message limit -- keys ``<group>/<p>/<i>``, each value starting with
the snapshot's id -- followed by a manifest (key ``<group>/<p>/manifest``: id and chunk count).
Compaction keeps the latest value per key; chunks a smaller snapshot no longer uses are tombstoned.

Restoring reads the partition ``read_committed`` from its start (compaction keeps it short) and takes
the latest manifest and its chunks: one committed transaction wrote them all, so they agree.

>>> from driftline.transport import Record
>>> topic_log: list[Record] = []
>>> class Sink:
...     def send_to(self, topic, partition, key, value):
...         topic_log.append(Record(topic=topic, value=value, key=key, partition=partition))
>>> store = ChangelogStore(Sink(), lambda p: list(topic_log), "state", "g", b"k" * 32, chunk_bytes=100)
>>> store.save(0, {"m": "x" * 500}, {"predictions": 10})
>>> store.load(0) == ({"m": "x" * 500}, {"predictions": 10}), store.load(1)
(True, None)
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from driftline.transport import Record
from stream_processors.runners.checkpoint import seal, unseal

__all__ = ["ChangelogStore"]

log = logging.getLogger(__name__)
_ID = 16  # bytes of a snapshot id at the head of each chunk


class PartitionSink(Protocol):
    """A transactional producer that can address a partition (``value`` None: a tombstone)."""

    def send_to(self, topic: str, partition: int, key: bytes, value: bytes | None) -> None: ...


class ChangelogStore:
    """Snapshots per input partition on a compacted topic, written in the processor's transaction."""

    in_transaction = True

    def __init__(
        self,
        sink: PartitionSink,
        read: Callable[[int], list[Record]],
        topic: str,
        group: str,
        key: bytes,
        *,
        chunk_bytes: int = 500_000,
    ) -> None:
        """``read(p)``: every committed record of changelog partition ``p``, in order."""
        if len(key) < 32:
            raise ValueError("the changelog's HMAC key must be at least 32 bytes")
        self.sink, self.read, self.topic, self.group, self._key = sink, read, topic, group, key
        self.chunk_bytes = chunk_bytes
        self._chunks: dict[int, int] = {}  # chunks of each partition's latest snapshot (to tombstone)
        self.saved_bytes = 0

    def _key_of(self, partition: int, part: str) -> bytes:
        return f"{self.group}/{partition}/{part}".encode()

    def seal(self, models: dict[str, Any], offsets: dict[str, int]) -> bytes:
        return seal(self._key, models, offsets)

    def save(self, partition: int, models: dict[str, Any], offsets: dict[str, int]) -> None:
        self.save_sealed(partition, self.seal(models, offsets))

    def save_sealed(self, partition: int, sealed: bytes) -> None:
        sid = uuid.uuid4().bytes
        n = max(1, -(-len(sealed) // self.chunk_bytes))
        for i in range(n):
            chunk = sealed[i * self.chunk_bytes : (i + 1) * self.chunk_bytes]
            self.sink.send_to(self.topic, partition, self._key_of(partition, str(i)), sid + chunk)
        for i in range(n, self._chunks.get(partition, 0)):
            self.sink.send_to(self.topic, partition, self._key_of(partition, str(i)), None)
        manifest = json.dumps({"id": sid.hex(), "chunks": n, "bytes": len(sealed)}).encode()
        self.sink.send_to(self.topic, partition, self._key_of(partition, "manifest"), manifest)
        self._chunks[partition] = n
        self.saved_bytes += len(sealed)

    def load(self, partition: int) -> tuple[dict[str, Any], dict[str, int]] | None:
        """The latest committed snapshot of ``partition``; None if there is none or it cannot be
        trusted (logged: the partition is then rebuilt by replaying from its start)."""
        prefix = f"{self.group}/{partition}/".encode()
        latest: dict[bytes, bytes | None] = {}
        for rec in self.read(partition):
            if rec.key is not None and rec.key.startswith(prefix):
                latest[rec.key[len(prefix) :]] = rec.value or None
        raw = latest.get(b"manifest")
        if raw is None:
            return None
        try:
            manifest = json.loads(raw)
            sid, n = bytes.fromhex(manifest["id"]), int(manifest["chunks"])
        except (ValueError, KeyError, TypeError) as exc:
            return self._reject(partition, f"unreadable manifest ({exc})")
        chunks = [latest.get(str(i).encode()) for i in range(n)]
        if any(c is None or c[:_ID] != sid for c in chunks):
            return self._reject(partition, "chunks missing or of another snapshot")
        self._chunks[partition] = n
        data, why = unseal(self._key, b"".join(c[_ID:] for c in chunks if c is not None))
        if data is None:
            return self._reject(partition, why)
        return data["models"], data["offsets"]

    def _reject(self, partition: int, why: str) -> Any:
        log.error(
            "changelog %s: the snapshot of partition %d is rejected: %s; it is rebuilt from its start",
            self.topic,
            partition,
            why,
        )
        return None
