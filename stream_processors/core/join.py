"""Joining predictions with their labels: the same joins in the same order whatever the batches,
with bounded lateness and bounded memory.

**The clocks.** Each model's join runs on *event time*: the ``event_time`` its producer stamped on
each prediction and label. The processor admits an event only if its event time is finite,
non-negative and at most ``monitor.max_future_skew_s`` ahead of its record's timestamp (the broker's
or producer's, Kafka's ``CreateTime`` or ``LogAppendTime``; for a record without one, ahead of the
newest event time already admitted for the model) -- see :mod:`~stream_processors.core.admission`.
A prediction's *arrival index* is its position among the model's accepted predictions, in the order
its input partition holds them.

**The order.** Predictions and labels come from two topics, and how a consumer interleaves them
depends on fetch sizes, batch boundaries, backlogs and restarts. So the join does not take them in
the order read: it *merges* the two inputs, each kept in the order its partition holds it, by event
time -- the next event merged is the earlier of the two inputs' next events (a prediction first on a
tie). An input's next event is known only once it has been read, so an event waits until the other
input has one too (:attr:`LabelJoiner.waiting`); in a live stream that is the time until the next
event of the other topic. The merged sequence depends on the two inputs only, so every join, every
count and everything computed downstream (error stream, rolling metrics, the label-free estimate)
is the same for any batching or interleaving. When both inputs have ended, or have been idle for a
while (the runner decides: ``idle_drain_s``), :meth:`LabelJoiner.drain` merges what waits as if
they had ended; that drain is the one point where wall-clock time can change what is merged when.

**Lateness.** The *watermark* is the newest merged prediction event time; the *horizon* is
``watermark - lateness_s``: everything about a merged prediction older than it is settled.
A prediction waits for its label until the horizon passes it; then it expires unlabelled. A label
merged before its prediction waits as an *orphan* under the same bound. A label whose prediction
already expired is *late*; a second label or prediction for an id already handled is a *duplicate*
and is dropped, so a replayed event never double-counts. A prediction read when it is already older
than ``lateness_s`` behind the newest prediction *read* (:attr:`LabelJoiner.arrival_horizon`) is late
and dropped before any statistic sees it.

**Bounded memory.** The id of a closed prediction (joined or expired) is remembered until the
horizon passes the watermark at which it was closed -- for ``lateness_s`` of event time -- and never
more than ``2 * max_pending`` ids. An event for a forgotten id is judged by its event time instead: a
prediction older than the horizon is late, and so is a label for an unknown id. Every buffer is kept
in merge order beside its lookup table, so what expires is always at its front: O(1) per event. At
most ``max_pending`` predictions wait unmerged: beyond that (labels stopped for long) the oldest are
merged at once, counted as ``forced`` -- memory stays bounded, at the price of the order.

>>> from driftline.contracts import Label, Prediction
>>> j = LabelJoiner(lateness_s=10)
>>> p = Prediction(prediction_id="a", model="m", model_version="1", event_time=0.0, features={}, prediction=1)
>>> j.add_predictions([(p, 0)]), j.waiting  # waits: a label may come before it in event time
([], 1)
>>> j.add_labels([Label(prediction_id="a", model="m", event_time=3.0, label=0)])  # may precede a prediction
[]
>>> [s.label for s in j.drain()]  # both inputs ended (or idle): it joins
[0]
>>> j.add_labels([Label(prediction_id="a", model="m", event_time=4.0, label=0)]), j.drain()  # duplicate
([], [])
>>> j.counts["joined"], j.counts["duplicate_labels"]
(1, 1)
>>> import msgspec
>>> later = msgspec.structs.replace(p, prediction_id="b", event_time=30.0)
>>> _, _ = j.add_predictions([(later, 1)]), j.drain()  # horizon 20: id "a" (closed at 0) is forgotten ...
>>> j.is_new("a"), j.add_predictions([(p, 2)]), j.counts["late_predictions"]  # ... its replay is late
(True, [], 1)
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable, Sequence
from typing import Any

from driftline.contracts import Label, Prediction, Scored

__all__ = ["JoinHealth", "LabelJoiner"]

JoinHealth = tuple[int, int, int, int, int, int]
_HEALTH = 6
"""The join's counts right after one join: joined, predictions, late labels, orphan labels, expired
unlabelled, pending -- what the metrics published at that join report (:attr:`LabelJoiner.health`)."""

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
    "forced",
)
_LAST_CALL = frozenset({"merged", "joins_before", "health"})  # what one call leaves for its caller
_LATE, _ORPHANS, _EXPIRED = "late_labels", "orphan_labels", "expired_unlabelled"  # (in each health record)
_CACHES = frozenset({"_rounded"})  # derived from other fields: never checkpointed


class LabelJoiner:
    # (watermark, the watermark rounded up to a 64th of lateness_s): a closing's run (see _close),
    # computed once per watermark
    _rounded: tuple[float, float] = (math.nan, math.nan)

    def __init__(self, lateness_s: float, max_pending: int = 1_000_000) -> None:
        if lateness_s <= 0:
            raise ValueError(f"lateness_s must be > 0, got {lateness_s}")
        if max_pending < 1:
            raise ValueError(f"max_pending must be >= 1, got {max_pending}")
        self.lateness_s = lateness_s
        self.max_pending = max_pending
        self._init_merge()
        self._pending: dict[str, tuple[Prediction, int]] = {}
        self._orphans: dict[str, Label] = {}
        self._closed: dict[str, bool] = {}  # id -> joined? (else expired)
        self.watermark = float("-inf")
        self.counts = dict.fromkeys(_COUNTERS, 0)

    def _init_merge(self, watermark: float = float("-inf")) -> None:
        self._unmerged_predictions: deque[tuple[Prediction, int]] = deque()
        self._unmerged_ids: set[str] = set()
        self._unmerged_labels: deque[Label] = deque()
        self.arrival_watermark = watermark  # newest prediction event time read
        # the merge order of each buffer (ids; an id no longer in its table is skipped)
        self._pending_order: deque[str] = deque()
        self._orphan_order: deque[str] = deque()
        self._closed_order: deque[str] = deque()
        # runs of consecutive closings: [watermark rounded up to a 64th of lateness_s, how many], oldest
        # first; an id is remembered until the horizon passes its run's watermark (at or after its
        # event time): at most 65 runs, whatever the rate
        self._closed_at: deque[list[float]] = deque()
        self._due = -math.inf  # the horizon cannot settle anything before it passes this
        # the last call's predictions merged, and how many joins preceded each; the counts right after
        # each join, flat (JOIN_HEALTH ints per join: see :meth:`health_at`)
        self.merged: list[Prediction] = []
        self.joins_before: list[int] = []
        self.health: list[int] = []

    def __getstate__(self) -> dict[str, Any]:
        """The state without the last call's merge record (:attr:`merged`, :attr:`joins_before`,
        :attr:`health`): read within that call, reset by the next; it held a whole batch's predictions,
        a fifth of a checkpoint's pickling at 200 features."""
        return {k: v for k, v in self.__dict__.items() if k not in _LAST_CALL and k not in _CACHES}

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Restore a checkpoint, including one written before the inputs were merged or before closed
        ids carried their event time."""
        self.merged, self.joins_before, self.health = [], [], []
        self.__dict__.update(state)
        if "_unmerged_predictions" not in state:
            self._init_merge(state.get("watermark", float("-inf")))
            self._pending_order.extend(self._pending)
            self._orphan_order.extend(self._orphans)
            self._closed_order.extend(self._closed)
            # closed at known watermarks (runs), or unknown ones: forgotten lateness_s from now
            unknown = [[self.watermark, len(self._closed)]] if self._closed else []
            self._closed_at = deque(state.get("_closed_at", unknown))
        self.counts = {**dict.fromkeys(_COUNTERS, 0), **state.get("counts", {})}

    @property
    def pending(self) -> int:
        """Merged predictions waiting for their label."""
        return len(self._pending)

    def unmerged(self) -> tuple[int, int]:
        """(predictions, labels) read but not merged: each waits for the other input."""
        return len(self._unmerged_predictions), len(self._unmerged_labels)

    def remembered(self) -> tuple[int, int, int]:
        """(pending predictions, orphan labels, closed ids remembered)."""
        return len(self._pending), len(self._orphans), len(self._closed)

    @property
    def waiting(self) -> int:
        """Events read but not merged yet: each waits for the other input to be read past it."""
        return len(self._unmerged_predictions) + len(self._unmerged_labels)

    @property
    def horizon(self) -> float:
        """Event time before which everything merged is settled."""
        return self.watermark - self.lateness_s

    @property
    def arrival_horizon(self) -> float:
        """A prediction read now older than this is late (it is never earlier than :attr:`horizon`)."""
        return self.arrival_watermark - self.lateness_s

    def is_new(self, prediction_id: str) -> bool:
        """False for an id read and waiting, or closed and still remembered (a replay, a duplicate).

        An id may also be forgotten: a prediction older than :attr:`arrival_horizon` is late whatever its id.
        """
        return not (
            prediction_id in self._unmerged_ids
            or prediction_id in self._pending
            or prediction_id in self._closed
        )

    def new_by_version(self, preds: Sequence[Prediction]) -> dict[str, list[int]]:
        """The positions in ``preds`` of the predictions to read, by version: not read before
        (:meth:`is_new`) nor earlier in ``preds``, and not older than :attr:`arrival_horizon`. The
        others are counted as duplicate or late, so replays never reach the statistics."""
        by_version: dict[str, list[int]] = {}
        seen: set[str] = set()
        is_new, counts, horizon = self.is_new, self.counts, self.arrival_horizon
        for pos, p in enumerate(preds):
            pid = p.prediction_id
            if pid in seen or not is_new(pid):
                counts["duplicate_predictions"] += 1
            elif p.event_time < horizon:  # settled time: its id may be forgotten, it may be a replay
                counts["late_predictions"] += 1
            else:
                seen.add(pid)
                by_version.setdefault(p.model_version, []).append(pos)
        return by_version

    def add_predictions(self, items: Iterable[tuple[Prediction, int]]) -> list[Scored]:
        """Read (prediction, arrival index) pairs; returns the joins the merge can now make."""
        queue, ids, counts, lateness = (
            self._unmerged_predictions,
            self._unmerged_ids,
            self.counts,
            self.lateness_s,
        )
        wm = self.arrival_watermark
        pending, closed = self._pending, self._closed
        for p, index in items:
            pid = p.prediction_id
            if pid in ids or pid in pending or pid in closed:  # not is_new(pid), inline
                counts["duplicate_predictions"] += 1
            elif p.event_time < wm - lateness:
                counts["late_predictions"] += 1
            else:
                if p.event_time > wm:
                    wm = p.event_time
                queue.append((p, index))
                ids.add(pid)
        self.arrival_watermark = wm
        return self._merge()

    def add_labels(self, labels: Iterable[Label]) -> list[Scored]:
        """Read labels; returns the joins the merge can now make."""
        self._unmerged_labels.extend(labels)
        return self._merge()

    def drain(self) -> list[Scored]:
        """Merge everything read, as if both inputs had ended."""
        return self._merge(final=True)

    def _merge(self, final: bool = False) -> list[Scored]:
        """Take the earlier of the two inputs' next events while both have one (``final``: while either
        has one); :attr:`merged` lists the predictions merged, :attr:`joins_before` how many joins came
        before each. Steps written out, counts in locals: per event, calls cost more than the join."""
        out: list[Scored] = []
        self.merged, self.joins_before, self.health = [], [], []
        merged, joins_before, health = self.merged, self.joins_before, self.health
        preds, labels, ids = self._unmerged_predictions, self._unmerged_labels, self._unmerged_ids
        pending, orphans, close, c = self._pending, self._orphans, self._close, self.counts
        cap, lateness = self.max_pending, self.lateness_s
        n_pred, n_label, n_joined = c["predictions"], c["labels"], c["joined"]
        limit, forced = 0 if final else cap, 0  # past both inputs' fronts, each keeps at most limit events
        try:
            while preds or labels:
                if preds and labels:
                    take = preds[0][0].event_time <= labels[0].event_time
                elif len(preds) > limit or len(labels) > limit:
                    take, forced = bool(preds), forced + 1
                else:
                    break
                if take:  # a prediction: the watermark moves, then it joins its orphan label or waits
                    item = preds.popleft()
                    p, index = item
                    pid, t = p.prediction_id, p.event_time
                    ids.discard(pid)
                    merged.append(p)
                    joins_before.append(len(out))
                    if t > self.watermark:
                        self.watermark = t
                        if t - lateness > self._due:
                            self._expire()
                    n_pred += 1
                    lab = orphans.pop(pid, None) if orphans else None
                    if lab is None:
                        pending[pid] = item
                        self._pending_order.append(pid)
                        if t < self._due:
                            self._due = t
                        if len(pending) > cap:
                            self._expire()
                        continue
                else:  # a label: it joins its pending prediction, or see _unjoined
                    lab = labels.popleft()
                    n_label += 1
                    pid = lab.prediction_id
                    hit = pending.pop(pid, None)
                    if hit is None:
                        self._unjoined(lab)
                        continue
                    p, index = hit
                n_joined += 1  # a join
                close(pid, True)
                health += (n_joined, n_pred, c[_LATE], c[_ORPHANS], c[_EXPIRED], len(pending))
                out.append(Scored(prediction=p, label=lab.label, label_time=lab.event_time, index=index))
        finally:
            c["predictions"], c["labels"], c["joined"] = n_pred, n_label, n_joined
            c["forced"] += 0 if final else forced
        return out

    def _unjoined(self, lab: Label) -> None:
        """A label merged without its prediction pending: a duplicate, late, or an orphan that waits."""
        pid, counts = lab.prediction_id, self.counts
        if pid in self._closed:
            counts["duplicate_labels" if self._closed[pid] else "late_labels"] += 1
        elif pid in self._orphans:
            counts["duplicate_labels"] += 1
        elif lab.event_time < self.horizon:
            counts["late_labels"] += 1
        else:
            self._orphans[pid] = lab
            self._orphan_order.append(pid)
            self._due = min(self._due, lab.event_time)
            if len(self._orphans) > self.max_pending:
                self._expire()

    def health_at(self, k: int) -> JoinHealth:
        """The counts right after the last call's ``k``-th join."""
        h = self.health[k * _HEALTH : (k + 1) * _HEALTH]
        return (h[0], h[1], h[2], h[3], h[4], h[5])

    def _close(self, pid: str, joined: bool) -> None:
        self._closed[pid] = joined
        self._closed_order.append(pid)
        runs, wm = self._closed_at, self.watermark
        if self._rounded[0] != wm:  # the watermark moved since the last closing
            q = self.lateness_s / 64
            self._rounded = (wm, math.ceil(wm / q) * q if math.isfinite(wm) else wm)
        wm = self._rounded[1]
        if runs and runs[-1][0] == wm:
            runs[-1][1] += 1
        else:
            runs.append([wm, 1])
            self._due = min(self._due, wm)

    def _expire(self) -> None:
        """Settle what the horizon has passed, and keep each buffer within its bound. Each buffer's
        front in merge order goes first (a later entry waits behind an earlier one, as it arrived)."""
        horizon, counts, cap = self.horizon, self.counts, self.max_pending
        pending, order = self._pending, self._pending_order
        while order:
            item = pending.get(order[0])
            if item is not None and item[0].event_time >= horizon and len(pending) <= cap:
                break
            pid = order.popleft()
            if item is not None:
                del pending[pid]
                counts["expired_unlabelled" if item[0].event_time < horizon else "evicted"] += 1
                self._close(pid, False)
        orphans, order = self._orphans, self._orphan_order
        while order:
            lab = orphans.get(order[0])
            if lab is not None and lab.event_time >= horizon and len(orphans) <= cap:
                break
            if orphans.pop(order.popleft(), None) is not None:
                counts["orphan_labels"] += 1
        self._forget(horizon)
        self._due = min(self._front_time(), self._closed_at[0][0] if self._closed_at else math.inf)

    def _front_time(self) -> float:
        """The event time of the first pending prediction and orphan label (both fronts are live)."""
        first = self._pending.get(self._pending_order[0]) if self._pending_order else None
        lab = self._orphans.get(self._orphan_order[0]) if self._orphan_order else None
        return min(
            math.inf if first is None else first[0].event_time, math.inf if lab is None else lab.event_time
        )

    def _forget(self, horizon: float) -> None:
        """Forget the closed ids whose run the horizon passed, and the oldest beyond ``2 * max_pending``."""
        runs, closed, order = self._closed_at, self._closed, self._closed_order
        drop = 0
        while runs and runs[0][0] < horizon:
            drop += int(runs.popleft()[1])
        excess = len(order) - drop - 2 * self.max_pending
        while excess > 0 and runs:
            take = min(excess, int(runs[0][1]))
            runs[0][1] -= take
            drop, excess = drop + take, excess - take
            if not runs[0][1]:
                runs.popleft()
        for _ in range(min(drop, len(order))):
            closed.pop(order.popleft(), None)
