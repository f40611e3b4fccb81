"""Replay after a restore: a partition's state is brought from its snapshot up to its committed offsets
before anything new of it is processed.

A snapshot is saved at offsets O_s; outputs and offsets O_c >= O_s are committed later, in
transactions. A processor that takes the partition over (a restart, a rebalance, an aborted
transaction) restores the snapshot, reads the partition from O_s and *replays* the records in
[O_s, O_c) through the core with their outputs discarded -- those outputs were committed before.
Records at or past O_c are held back until every input topic of the partition has been replayed up
to its O_c, so the state they meet is exactly the committed one, whatever order the consumer
fetches the two topics in (the core's outputs do not depend on how its inputs interleave).

>>> from driftline.transport import Record
>>> class Core:
...     def __init__(self): self.seen = []
...     def process(self, records): self.seen += [(r.topic, r.offset) for r in records]
>>> def rec(topic, offset): return Record(topic=topic, value=b"", partition=0, offset=offset)
>>> batches = [[rec("p", 3), rec("p", 4), rec("p", 5)], [rec("l", 1), rec("l", 2)]]
>>> core = Core()
>>> replay = ReplayPoller(type("Src", (), {"poll": lambda self, n, t=0.0: batches.pop(0)})(), core)
>>> replay.start(0, {"p": 5, "l": 2})  # committed: p up to 5, l up to 2
>>> [(r.topic, r.offset) for r in replay.poll(10)], core.seen  # p 5 waits for l to reach 2
([], [('p', 3), ('p', 4)])
>>> [(r.topic, r.offset) for r in replay.poll(10)], core.seen, replay.replaying
([('p', 5), ('l', 2)], [('p', 3), ('p', 4), ('l', 1)], False)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from driftline.transport import Record
from stream_processors.runners.base import Poller

__all__ = ["ReplayPoller"]

log = logging.getLogger(__name__)


class _Core(Protocol):
    def process(self, records: Sequence[Record]) -> Any: ...

    def deferred(self, exc: BaseException) -> bool: ...


class ReplayPoller:
    """A :class:`~stream_processors.runners.base.Poller` that replays partitions being restored
    (:meth:`start`) and passes every other record through unchanged."""

    def __init__(self, source: Poller, core: _Core) -> None:
        self.source, self.core = source, core
        self._until: dict[int, dict[str, int]] = {}  # partition -> topic -> committed offset not reached yet
        self._held: dict[int, list[Record]] = {}  # partition -> records past its committed offsets
        self.replayed = 0

    @property
    def replaying(self) -> bool:
        """Whether some partition is still being replayed (the runner must not drain meanwhile)."""
        return bool(self._until)

    def active(self, partition: int) -> bool:
        return partition in self._until

    def start(self, partition: int, until: Mapping[str, int]) -> None:
        """Replay ``partition`` up to ``until`` (the committed next offset per input topic, for the
        topics whose reading starts before it)."""
        self._held.pop(partition, None)
        if until:
            self._until[partition] = dict(until)
        else:
            self._until.pop(partition, None)

    def forget(self, partition: int) -> None:
        """``partition`` is no longer this instance's: drop its replay and what it held back."""
        self._until.pop(partition, None)
        self._held.pop(partition, None)

    def poll(self, max_records: int, timeout: float = 0.0) -> list[Record]:
        records = self.source.poll(max_records, timeout)
        if not self._until or not records:
            return records
        out: list[Record] = []
        replay: list[Record] = []
        until, held = self._until, self._held
        for rec in records:
            left = until.get(rec.partition)
            if left is None:
                out.append(rec)
                continue
            end = left.get(rec.topic)
            if end is not None and rec.offset < end:
                replay.append(rec)
                if rec.offset + 1 >= end:
                    del left[rec.topic]
            else:
                left.pop(rec.topic, None)  # past it (a gap: records deleted under us)
                held.setdefault(rec.partition, []).append(rec)
        if replay:
            self._replay(replay)
        for p in [p for p, left in until.items() if not left]:
            del until[p]
            out += held.pop(p, [])
            log.info("partition %d: replayed up to its committed offsets; processing resumes", p)
        return out

    def _replay(self, records: list[Record]) -> None:
        """Through the core, outputs discarded. A batch that raises is replayed record by record, as
        the first run did (:meth:`~stream_processors.core.processor.ProcessorCore.process_each`)."""
        self.replayed += len(records)
        try:
            self.core.process(records)
        except Exception as exc:
            each = getattr(self.core, "process_each", None)
            if each is None or self.core.deferred(exc):  # deferred: nothing was processed
                raise
            each(records)
