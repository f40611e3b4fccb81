"""Joining predictions with their labels, with bounded lateness and bounded memory.

**The clock.** Each model's join runs on *event time*: the ``event_time`` its producer stamped on
each prediction and label. The processor admits an event only if its event time is finite,
non-negative and at most ``monitor.max_future_skew_s`` ahead of its record's timestamp (the broker's
or producer's, Kafka's ``CreateTime`` or ``LogAppendTime``; for a record without one, ahead of the
newest event time already admitted for the model) -- see :mod:`~stream_processors.core.admission`.
The *watermark* is the newest admitted prediction event time of the model; labels never move it.
The *horizon* is ``watermark - lateness_s``: everything about a prediction older than it is settled.

A prediction waits for its label until the horizon passes it; then it expires unlabelled. A label
that arrives before its prediction waits as an *orphan* under the same bound. A label whose prediction
already expired is *late*; a second label or prediction for an id already handled is a *duplicate* and
is dropped, so a replayed event never double-counts.

**Bounded memory.** The id of a closed prediction (joined or expired) is remembered until the
horizon passes the watermark at which it was closed -- for ``lateness_s`` of event time: a label for
a prediction that just expired is still told *late* -- and never more than ``2 * max_pending`` ids.
Then the id is forgotten, and since it closed at or after its prediction's event time, that event
time is older than the horizon. An event for a forgotten id is judged by its event time instead: a
prediction older than the horizon is *late* (``late_predictions``: dropped before any statistic sees
it, so a replay of a forgotten prediction still never double-counts), and a label for an unknown id
older than the horizon is *late* (``late_labels``: its prediction, if it ever comes, is older still).
A label for a forgotten id whose own event time is within the horizon waits as an orphan, and is
counted as one when the horizon passes it.

>>> from driftline.contracts import Label, Prediction
>>> j = LabelJoiner(lateness_s=10)
>>> p = Prediction(prediction_id="a", model="m", model_version="1", event_time=0.0, features={}, prediction=1)
>>> j.add_predictions([(p, 0)])
[]
>>> [s.label for s in j.add_labels([Label(prediction_id="a", model="m", event_time=3.0, label=0)])]
[0]
>>> j.add_labels([Label(prediction_id="a", model="m", event_time=4.0, label=0)])  # duplicate
[]
>>> j.counts["joined"], j.counts["duplicate_labels"]
(1, 1)
>>> import msgspec
>>> later = msgspec.structs.replace(p, prediction_id="b", event_time=30.0)
>>> _ = j.add_predictions([(later, 1)])  # horizon 20: id "a" (closed at 0) is forgotten ...
>>> j.is_new("a"), j.add_predictions([(p, 2)]), j.counts["late_predictions"]  # ... its replay is late
(True, [], 1)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from itertools import islice
from typing import Any, TypeVar

from driftline.contracts import Label, Prediction, Scored

__all__ = ["LabelJoiner"]

_V = TypeVar("_V")

_COUNTERS = (
    "predictions",
    "labels",
    "joined",
    "duplicate_predictions",
    "duplicate_labels",
    "late_predictions",
    "late_labels",
    "orphan_labels",
    "expired_unlabelled",
    "evicted",
)


class LabelJoiner:
    def __init__(self, lateness_s: float, max_pending: int = 1_000_000) -> None:
        if lateness_s <= 0:
            raise ValueError(f"lateness_s must be > 0, got {lateness_s}")
        if max_pending < 1:
            raise ValueError(f"max_pending must be >= 1, got {max_pending}")
        self.lateness_s = lateness_s
        self.max_pending = max_pending
        self._pending: dict[str, tuple[Prediction, int]] = {}
        self._orphans: dict[str, Label] = {}
        self._closed: dict[str, bool] = {}  # id -> joined? (else expired), in the order closed
        # runs of consecutive closings at one watermark: [watermark, how many], oldest first; an
        # id is remembered until the horizon passes its run's watermark (at or after its event time)
        self._closed_at: deque[list[float]] = deque()
        self.watermark = float("-inf")
        self.counts = dict.fromkeys(_COUNTERS, 0)

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore a checkpoint, including one written before closed ids carried their event time."""
        if "_closed_at" not in state:  # closed ids of unknown age: forgotten lateness_s from now
            closed = state.get("_closed", {})
            state["_closed_at"] = deque(
                [[state.get("watermark", float("-inf")), len(closed)]] if closed else []
            )
        state["counts"] = {**dict.fromkeys(_COUNTERS, 0), **state.get("counts", {})}
        self.__dict__.update(state)

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def waiting(self) -> int:
        """Events held back until the other input topic is read past them."""
        return 0

    @property
    def horizon(self) -> float:
        """Event time before which everything is settled: older predictions are late."""
        return self.watermark - self.lateness_s

    def is_new(self, prediction_id: str) -> bool:
        """False for an id waiting, or closed and still remembered (a replay or a duplicate).

        An id may also be forgotten: a prediction older than :attr:`horizon` is late whatever its id.
        """
        return prediction_id not in self._pending and prediction_id not in self._closed

    def add_predictions(self, items: Iterable[tuple[Prediction, int]]) -> list[Scored]:
        """Add (prediction, arrival index) pairs; returns predictions joined with waiting labels."""
        out: list[Scored] = []
        pending, orphans, closed, counts = self._pending, self._orphans, self._closed, self.counts
        wm, horizon = self.watermark, self.horizon
        for p, index in items:
            pid = p.prediction_id
            if pid in pending or pid in closed:
                counts["duplicate_predictions"] += 1
                continue
            if p.event_time < horizon:
                counts["late_predictions"] += 1
                continue
            counts["predictions"] += 1
            if p.event_time > wm:
                wm = p.event_time
            lab = orphans.pop(pid, None)
            if lab is not None:
                self.watermark = wm  # closed at the watermark: ids close in the order of these times
                out.append(self._join(p, index, lab))
            else:
                pending[pid] = (p, index)
        self.watermark = wm
        self._expire()
        return out

    def add_labels(self, labels: Iterable[Label]) -> list[Scored]:
        out: list[Scored] = []
        pending, orphans, closed, counts = self._pending, self._orphans, self._closed, self.counts
        horizon = self.horizon
        for lab in labels:
            counts["labels"] += 1
            pid = lab.prediction_id
            hit = pending.pop(pid, None)
            if hit is not None:
                out.append(self._join(hit[0], hit[1], lab))
            elif pid in closed:
                counts["duplicate_labels" if closed[pid] else "late_labels"] += 1
            elif pid in orphans:
                counts["duplicate_labels"] += 1
            elif lab.event_time < horizon:
                counts["late_labels"] += 1
            else:
                orphans[pid] = lab
        self._expire()
        return out

    def _join(self, p: Prediction, index: int, lab: Label) -> Scored:
        self.counts["joined"] += 1
        self._close(p, True)
        return Scored(prediction=p, label=lab.label, label_time=lab.event_time, index=index)

    def _close(self, p: Prediction, joined: bool) -> None:
        self._closed[p.prediction_id] = joined
        runs, wm = self._closed_at, self.watermark
        if runs and runs[-1][0] == wm:
            runs[-1][1] += 1
        else:
            runs.append([wm, 1])

    def _expire(self) -> None:
        """Settle everything the horizon has passed, and keep each buffer within its bound.

        Each buffer is in arrival order, so what goes is a prefix: it is found in one pass and then
        deleted (taking the first key again after each deletion would rescan the deleted slots at a
        dict's front: quadratic in a large buffer)."""
        horizon, counts, cap = self.horizon, self.counts, self.max_pending
        pending = self._pending
        gone = _prefix(pending, lambda item: item[0].event_time >= horizon, len(pending) - cap)
        for pid in gone:
            p = pending.pop(pid)[0]
            counts["expired_unlabelled" if p.event_time < horizon else "evicted"] += 1
            self._close(p, False)
        orphans = self._orphans
        gone = _prefix(orphans, lambda lab: lab.event_time >= horizon, len(orphans) - cap)
        for pid in gone:
            del orphans[pid]
        counts["orphan_labels"] += len(gone)
        self._forget(horizon)

    def _forget(self, horizon: float) -> None:
        """Forget the closed ids whose run the horizon passed, and the oldest beyond ``2 * max_pending``."""
        runs, closed = self._closed_at, self._closed
        drop = 0
        while runs and runs[0][0] < horizon:
            drop += int(runs.popleft()[1])
        excess = len(closed) - drop - 2 * self.max_pending
        while excess > 0 and runs:
            take = min(excess, int(runs[0][1]))
            runs[0][1] -= take
            drop, excess = drop + take, excess - take
            if not runs[0][1]:
                runs.popleft()
        if drop:
            for pid in list(islice(closed, drop)):
                del closed[pid]


def _prefix(buffer: dict[str, _V], keep: Callable[[_V], bool], excess: int) -> list[str]:
    """The keys at the front of ``buffer`` up to the first value to ``keep``, and at least ``excess``."""
    out: list[str] = []
    for key, value in buffer.items():
        if len(out) >= excess and keep(value):
            break
        out.append(key)
    return out
