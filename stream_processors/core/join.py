"""Joining predictions with their labels, with bounded lateness.

A prediction waits for its label until the watermark (the newest prediction event time seen,
minus ``lateness_s``) passes it; then it expires unlabelled. A label that arrives before its
prediction waits as an *orphan* under the same bound. A label whose prediction already expired is
*late*; a second label or prediction for an id already handled is a *duplicate* and is dropped,
so a replayed event never double-counts.

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
"""

from __future__ import annotations

from collections.abc import Iterable

from driftline.contracts import Label, Prediction, Scored

__all__ = ["LabelJoiner"]

_COUNTERS = (
    "predictions",
    "labels",
    "joined",
    "duplicate_predictions",
    "duplicate_labels",
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
        self._closed: dict[str, bool] = {}  # id -> True if joined, False if expired unlabelled
        self.watermark = float("-inf")
        self.counts = dict.fromkeys(_COUNTERS, 0)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def is_new(self, prediction_id: str) -> bool:
        """False for an id already waiting, joined or expired (a replay or a duplicate)."""
        return prediction_id not in self._pending and prediction_id not in self._closed

    def add_predictions(self, items: Iterable[tuple[Prediction, int]]) -> list[Scored]:
        """Add (prediction, arrival index) pairs; returns predictions joined with waiting labels."""
        out: list[Scored] = []
        pending, orphans, closed, counts = self._pending, self._orphans, self._closed, self.counts
        wm = self.watermark
        for p, index in items:
            pid = p.prediction_id
            if pid in pending or pid in closed:
                counts["duplicate_predictions"] += 1
                continue
            counts["predictions"] += 1
            if p.event_time > wm:
                wm = p.event_time
            lab = orphans.pop(pid, None)
            if lab is not None:
                out.append(self._join(p, index, lab))
            else:
                pending[pid] = (p, index)
        self.watermark = wm
        self._expire()
        return out

    def add_labels(self, labels: Iterable[Label]) -> list[Scored]:
        out: list[Scored] = []
        pending, orphans, closed, counts = self._pending, self._orphans, self._closed, self.counts
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
            else:
                orphans[pid] = lab
        self._expire()
        return out

    def _join(self, p: Prediction, index: int, lab: Label) -> Scored:
        self.counts["joined"] += 1
        self._close(p.prediction_id, True)
        return Scored(prediction=p, label=lab.label, label_time=lab.event_time, index=index)

    def _close(self, pid: str, joined: bool) -> None:
        closed = self._closed
        closed[pid] = joined
        if len(closed) > 2 * self.max_pending:
            del closed[next(iter(closed))]

    def _expire(self) -> None:
        horizon = self.watermark - self.lateness_s
        pending, counts = self._pending, self.counts
        while pending:
            pid = next(iter(pending))
            p = pending[pid][0]
            if p.event_time >= horizon and len(pending) <= self.max_pending:
                break
            del pending[pid]
            counts["expired_unlabelled" if p.event_time < horizon else "evicted"] += 1
            self._close(pid, False)
        orphans = self._orphans
        while orphans:
            pid = next(iter(orphans))
            if orphans[pid].event_time >= horizon and len(orphans) <= self.max_pending:
                break
            del orphans[pid]
            counts["orphan_labels"] += 1
