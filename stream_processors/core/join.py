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

from collections.abc import Iterable
from typing import Any

from driftline.contracts import Label, Prediction, Scored

__all__ = ["LabelJoiner"]

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
        # id -> (event time it closed at, joined?), in the order closed; forgotten past the horizon
        self._closed: dict[str, tuple[float, bool]] = {}
        self.watermark = float("-inf")
        self.counts = dict.fromkeys(_COUNTERS, 0)

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore a checkpoint, including one written before closed ids carried their event time."""
        closed = state.get("_closed", {})
        if closed and isinstance(next(iter(closed.values())), bool):
            wm = state.get("watermark", float("-inf"))
            state["_closed"] = {pid: (wm, joined) for pid, joined in closed.items()}
        state["counts"] = {**dict.fromkeys(_COUNTERS, 0), **state.get("counts", {})}
        self.__dict__.update(state)

    @property
    def pending(self) -> int:
        return len(self._pending)

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
                counts["duplicate_labels" if closed[pid][1] else "late_labels"] += 1
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
        closed = self._closed
        closed[p.prediction_id] = (self.watermark, joined)  # at or after p's event time
        if len(closed) > 2 * self.max_pending:
            del closed[next(iter(closed))]

    def _expire(self) -> None:
        horizon = self.horizon
        pending, counts = self._pending, self.counts
        while pending:
            pid = next(iter(pending))
            p = pending[pid][0]
            if p.event_time >= horizon and len(pending) <= self.max_pending:
                break
            del pending[pid]
            counts["expired_unlabelled" if p.event_time < horizon else "evicted"] += 1
            self._close(p, False)
        orphans = self._orphans
        while orphans:
            pid = next(iter(orphans))
            if orphans[pid].event_time >= horizon and len(orphans) <= self.max_pending:
                break
            del orphans[pid]
            counts["orphan_labels"] += 1
        closed = self._closed
        while closed:  # in the order closed, so in the order of the times they closed at
            pid = next(iter(closed))
            if closed[pid][0] >= horizon:
                break
            del closed[pid]
