"""The label join, native or not: :func:`new_joiner` makes the join a model's monitor uses.

:class:`~.join.LabelJoiner` is the join and its reference: what it does, and why, is said there.
:class:`NativeJoiner` is the same join with its state and merge in Rust (``native/src/join.rs``,
built with the native decoder): step for step the same, it gives the same joins, merge record and
counts, and the same state (``tests/stream_processors/core/test_join_native.py`` holds the two equal
on seeded streams with duplicates, late and orphan events, forced merges and restores). At 8
features it takes the join from ~20% of ``driftline process`` to ~9% with its scored events built
(README, throughput): 1.4-1.8 us an event in Python, 0.42-0.46 us native.

**Checkpoints are portable both ways.** A :class:`NativeJoiner` pickles as its state in
:class:`~.join.LabelJoiner`'s format, but for its queues of ids -- the bulk of it: every id closed
within ``lateness_s``, every id joined behind the oldest prediction still waiting -- which are packed
into byte strings (:func:`expanded` unpacks them). Those pickle as fast as they copy, where a string
object per id made the native state slower to pickle than the Python one (a 150k-prediction state:
a forked checkpoint 60-75 ms against 245-255 ms). :func:`restore_joiner` restores it as whichever
join this install runs (``DRIFTLINE_NATIVE=0``: the Python one); a checkpoint holding a
:class:`~.join.LabelJoiner` is taken over natively by :func:`as_native` when its partition is adopted.

>>> from driftline.contracts import Label, Prediction
>>> j = new_joiner(lateness_s=10)
>>> p = Prediction(prediction_id="a", model="m", model_version="1", event_time=0.0, features={}, prediction=1)
>>> j.add_predictions([(p, 0)]), j.add_labels([Label(prediction_id="a", model="m", event_time=3.0, label=0)])
([], [])
>>> [(s.label, s.index) for s in j.drain()], j.counts["joined"]
([(0, 0)], 1)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

import numpy as np

from driftline import native
from driftline.contracts import Label, Prediction, Scored
from stream_processors.core.join import LabelJoiner

__all__ = ["Joiner", "NativeJoiner", "as_native", "expanded", "new_joiner", "restore_joiner"]

_Joins = tuple[list[Any], list[Any], list[float], list[int]]


def _scored(joins: _Joins) -> list[Scored]:
    """The scored events of the joins the native merge made (as four lists)."""
    preds, labels, times, indexes = joins
    return [
        Scored(prediction=p, label=lab, label_time=t, index=i)
        for p, lab, t, i in zip(preds, labels, times, indexes, strict=True)
    ]


class NativeJoiner(native.JoinBase):
    """:class:`~.join.LabelJoiner` with its state and merge in Rust; the same interface."""

    def add_predictions(self, items: Iterable[tuple[Prediction, int]]) -> list[Scored]:
        """Read (prediction, arrival index) pairs; returns the joins the merge can now make."""
        return _scored(self._add_predictions(items))

    def add_labels(self, labels: Iterable[Label]) -> list[Scored]:
        """Read labels; returns the joins the merge can now make."""
        return _scored(self._add_labels(labels))

    def drain(self) -> list[Scored]:
        """Merge everything read, as if both inputs had ended."""
        return _scored(self._drain())

    def __getstate__(self) -> dict[str, Any]:
        """The state in :class:`~.join.LabelJoiner`'s format (:meth:`LabelJoiner.__getstate__`)."""
        return expanded(self.state())

    def __reduce__(self) -> tuple[Any, tuple[dict[str, Any]]]:
        return restore_joiner, (self.state(),)


Joiner = LabelJoiner | NativeJoiner


def new_joiner(lateness_s: float, max_pending: int = 1_000_000) -> Joiner:
    """The native join if it was built and ``DRIFTLINE_NATIVE`` allows it, else the Python one."""
    if native.available():
        return NativeJoiner(lateness_s, max_pending)
    return LabelJoiner(lateness_s, max_pending)


def as_native(joiner: Joiner) -> Joiner:
    """``joiner``, its state taken over by the native join when that is available."""
    if type(joiner) is not LabelJoiner or not native.available():
        return joiner
    state = joiner.__getstate__()
    copied = NativeJoiner(joiner.lateness_s, joiner.max_pending)
    copied.load_state(state)
    return copied


def restore_joiner(state: dict[str, Any]) -> Joiner:
    """A pickled join (:meth:`NativeJoiner.__reduce__`), as whichever join this install runs."""
    if native.available():
        restored = NativeJoiner(state["lateness_s"], state["max_pending"])
        restored.load_state(state)
        return restored
    joiner = LabelJoiner.__new__(LabelJoiner)
    joiner.__setstate__(expanded(state))
    return joiner


def expanded(state: dict[str, Any]) -> dict[str, Any]:
    """A native join's state (:meth:`NativeJoiner.state`) in :class:`~.join.LabelJoiner`'s format. Its
    merge-order queues are packed, each as two byte strings: the ids' UTF-8 bytes end to end and each
    one's length (u32, little-endian); and its closed table as a byte per closed id (in the closed
    queue's order): joined (2), expired (1) or no longer remembered (0)."""
    if "_closed_flags" not in state:
        return state
    out = dict(state)
    for name in ("_pending_order", "_orphan_order", "_closed_order"):
        blob, lengths = out.pop(f"{name}_packed")
        ends = np.cumsum(np.frombuffer(lengths, dtype="<u4"), dtype=np.int64).tolist()
        out[name] = deque(blob[a:b].decode() for a, b in zip([0, *ends][:-1], ends, strict=True))
    flags = out.pop("_closed_flags")
    out["_closed"] = {pid: flag == 2 for pid, flag in zip(out["_closed_order"], flags, strict=True) if flag}
    return out
