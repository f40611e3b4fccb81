"""The retrain worker's runner: reads requests, steps the worker, commits what is decided.

A request is committed only once its outcome is recorded: per partition the runner commits the
offset of the oldest request still pending (or, with none pending, the offset after the last one
read). A kill therefore loses nothing -- the next start reads the pending requests again (and the
decided ones after them, which the worker skips as already handled).

>>> from driftline.transport import Record
>>> class Worker:  # decides the request at offset 1 at once, keeps the one at offset 0 pending
...     pending, positions = {"r0": None}, {"r0": ("retrain", 0, 0)}
...     def submit_record(self, record): return None if record.offset == 0 else "skipped"
...     def step(self): return []
>>> class Source:
...     committed = None
...     def poll(self, n, timeout=0.0): return [Record("retrain", b"", offset=i) for i in (0, 1)]
...     def commit(self, offsets=None): self.committed = dict(offsets or {})
...     def close(self): pass
>>> runner = RetrainRunner(Worker(), source := Source(), retry_interval=0.0)
>>> _ = runner.run_once()
>>> source.committed  # not past the pending request at offset 0
{('retrain', 0): 0}
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import msgspec

from driftline.contracts import RetrainOutcome
from driftline.transport import Record

__all__ = ["CommitSource", "LoopTick", "RetrainRunner"]

log = logging.getLogger(__name__)
TopicPartition = tuple[str, int]


class CommitSource(Protocol):
    """A consumer of the retrain topic that commits the offsets it is given (``KafkaSource``)."""

    def poll(self, max_records: int, timeout: float = 0.0) -> list[Record]: ...

    def commit(self, offsets: Mapping[TopicPartition, int] | None = None) -> None: ...

    def close(self) -> None: ...


class Decider(Protocol):
    """What the runner needs of :class:`~retrain_worker.worker.RetrainWorker`."""

    @property
    def pending(self) -> Mapping[str, Any]: ...

    @property
    def positions(self) -> Mapping[str, tuple[str, int, int]]:
        """Where each pending request was read: (topic, partition, offset)."""
        ...

    def submit_record(self, record: Record) -> Any: ...

    def step(self, now: float | None = None) -> list[RetrainOutcome]: ...

    def forget(self, partitions: list[int]) -> list[str]: ...


class LoopTick(msgspec.Struct, frozen=True):
    """The loop's event-time clock, sent by a paced producer on the clock topic: every event before
    ``event_time`` has been produced, scored and routed (the producer waited for the processor's and
    the control plane's committed offsets), and the producer holds there until this tick's offset is
    committed by the worker's group -- so pending requests are decided on the same events, at the same
    event time, as in the embedded loop, however fast the replay runs."""

    event_time: float
    # (topic, partition, end offset) of the retrain requests sent before the tick: tried once read
    requests_to: list[tuple[str, int, int]] = []


class RetrainRunner:
    """Drives a worker from a :class:`CommitSource`; also its rebalance listener (``on_assign`` /
    ``on_revoke`` / ``on_lost``), so a partition taken away is committed up to its oldest pending
    request and its pending requests are left to the new owner.

    When pending requests are tried again -- on event time, never on a wall-clock timer when the
    runner is told how the loop advances:

    * ``clock_topic``: at each :class:`LoopTick` read there, with the tick's event time as the
      worker's ``now`` (a paced replay or demo: decisions at the embedded loop's event times);
    * else (no tick read yet: nobody paces the loop) ``progress`` (how many labelled events there
      are, e.g. the scored topic's end offsets): when ``retry_every`` more have arrived since the last
      try, or a request was queued -- a request waits for labelled data, so nothing else can change
      its answer -- or ``idle_retry_s`` have passed (the stream may have stopped short of the count);
    * else every ``retry_interval`` seconds (a runner told nothing of the loop)."""

    def __init__(
        self,
        worker: Decider,
        source: CommitSource,
        *,
        retry_interval: float = 1.0,
        batch: int = 100,
        clock: Callable[[], float] = time.monotonic,
        on_outcomes: Callable[[list[RetrainOutcome]], None] | None = None,
        clock_topic: str | None = None,
        progress: Callable[[], int] | None = None,
        retry_every: int = 100,
        idle_retry_s: float = 5.0,
    ) -> None:
        self.worker, self.source = worker, source
        self.on_outcomes = on_outcomes  # e.g. the metrics exporter: told of every outcome decided
        self.retry_interval, self.batch, self.clock = retry_interval, batch, clock
        self._read_to: dict[TopicPartition, int] = {}  # offset after the last record decided or queued
        self._committed: dict[TopicPartition, int] = {}
        self._last_try = float("-inf")
        self.clock_topic, self.progress, self.retry_every = clock_topic, progress, retry_every
        self.idle_retry_s = idle_retry_s
        self._seen = -1  # labelled events there were at the last try (``progress``)
        self.now: float | None = None  # the loop's event time, from the last tick read
        self._ticks: list[Record] = []  # ticks read, not yet tried

    def run(self, stop: Callable[[], bool], timeout: float = 0.5) -> None:
        """Until ``stop()``; then leave the group (which commits what is decided)."""
        try:
            while not stop():
                self.run_once(timeout)
        finally:
            self.source.close()

    def run_once(self, timeout: float = 0.0) -> list[RetrainOutcome]:
        """Read what is there, try the pending requests if it is time, commit; returns the outcomes
        the worker's step decided."""
        at_once: list[RetrainOutcome] = []
        done: list[RetrainOutcome] = []
        queued = False
        for rec in self.source.poll(self.batch, timeout):
            if self.clock_topic is not None and rec.topic == self.clock_topic:
                self._ticks.append(rec)  # tried below, once the requests sent before it are read
                continue
            out = self.worker.submit_record(rec)  # raises only on registry / broker trouble: nothing advances
            at_once += [out] if isinstance(out, RetrainOutcome) else []
            queued = queued or out is None
            self._advance(rec)
        while self._ticks and (tick := self._tick(self._ticks[0])) is not None:
            done += tick
            self._advance(self._ticks.pop(0))
        if self.worker.pending and self.now is None and self._due(queued):  # no tick read: unpaced
            done += self.worker.step()
        self.commit()
        if self.on_outcomes is not None and (at_once or done):
            self.on_outcomes(at_once + done)
        return done

    def _advance(self, rec: Record) -> None:
        tp = (rec.topic, rec.partition)
        self._read_to[tp] = max(self._read_to.get(tp, 0), rec.offset + 1)

    def _tick(self, rec: Record) -> list[RetrainOutcome] | None:
        """The loop's clock moved: try the pending requests on the events before it; None while a
        request sent before the tick is still unread (another partition, fetched later)."""
        try:
            tick = msgspec.json.decode(rec.value, type=LoopTick)
        except msgspec.DecodeError as exc:  # a stray record on the clock topic: not a tick
            log.error("retrain worker: ignoring a record on %s: %s", rec.topic, exc)
            return []
        if any(self._read_to.get((t, p), 0) < end for t, p, end in tick.requests_to):
            return None
        self.now = tick.event_time
        return self.worker.step(self.now) if self.worker.pending else []

    def _due(self, queued: bool) -> bool:
        """Whether to try the pending requests now (no loop clock): ``retry_every`` more labelled
        events than at the last try, or a request just queued; without ``progress``, the timer."""
        if self.progress is None:
            due = self.clock() - self._last_try >= self.retry_interval
            self._last_try = self.clock() if due else self._last_try
            return due
        seen = self.progress()
        # a stall guard too: once the stream stops, nothing moves the count by retry_every again
        idle = self.clock() - self._last_try >= self.idle_retry_s
        if queued or seen - self._seen >= self.retry_every or idle:
            self._seen, self._last_try = seen, self.clock()
            return True
        return False

    def committable(self, partitions: set[int] | None = None) -> dict[TopicPartition, int]:
        """Per partition read: the offset of its oldest pending request, else the next to read."""
        out = dict(self._read_to)
        for topic, part, offset in self.worker.positions.values():
            if (topic, part) in out and offset >= 0:
                out[(topic, part)] = min(out[(topic, part)], offset)
        return {tp: off for tp, off in out.items() if partitions is None or tp[1] in partitions}

    def commit(self, partitions: set[int] | None = None) -> None:
        """Commit what changed since the last commit; a failed commit is tried again next time."""
        due = {tp: off for tp, off in self.committable(partitions).items() if self._committed.get(tp) != off}
        if not due:
            return
        try:
            self.source.commit(due)
        except Exception as exc:  # a rebalance in progress, the broker away: commit again later
            log.warning("retrain worker: committing %s failed (%s); will try again", due, exc)
            return
        self._committed.update(due)

    # -- rebalance listener ----------------------------------------------------------------------
    def on_assign(self, partitions: list[int]) -> Mapping[TopicPartition, int]:
        return {}  # start from the committed offsets

    def on_revoke(self, partitions: list[int]) -> None:
        self.commit(set(partitions))
        self._drop(partitions)

    def on_lost(self, partitions: list[int]) -> None:
        self._drop(partitions)  # no commit: the partitions may already be someone else's

    def _drop(self, partitions: list[int]) -> None:
        gone = self.worker.forget(partitions)
        if gone:
            log.info("retrain worker: partitions %s revoked; left pending requests %s", partitions, gone)
        for tp in [tp for tp in self._read_to if tp[1] in set(partitions)]:
            del self._read_to[tp]
            self._committed.pop(tp, None)
