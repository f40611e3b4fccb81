"""A model's batch of predictions on their way to its monitor: whole, or as heads whose features the
native decoder reads from the records.

Once a model has served a batch of one version (without segments), the processor admits its next
predictions as heads (:class:`~.schema.PredictionHead`, no features decoded) and :func:`read_heads`
has the native decoder (:mod:`driftline.native`) read their features straight into that version's
columns. What it does not read -- another version's, or a record not of the plainest kind -- is
decoded whole, as the general path decodes it, and judged the same way: a record that does not
decode, or names an unsafe feature, is dead-lettered with the general path's reason. Either way the
model's monitor gets the same columns and the join holds the same bytes, so the outputs are the same
byte for byte (``tests/stream_processors/core/test_native_path.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from driftline.contracts import Prediction, unsafe_feature_names
from driftline.errors import InvalidEvent
from driftline.transport import Record
from stream_processors.core.admission import decode_whole
from stream_processors.core.model_monitor import ModelMonitor
from stream_processors.core.schema import PredictionHead

__all__ = ["Items", "read_heads", "safe_names"]

Items = list[tuple[Prediction | PredictionHead, Record]]
Fail = Callable[[InvalidEvent, Record, str], object]


def safe_names(items: Items, fail: Fail) -> Items:
    """``items`` (whole predictions) but those naming a feature that is not a safe name, which go to
    ``fail(reason, record, "validate")``."""
    dropped = _unsafe(items, fail)
    return [item for pos, item in enumerate(items) if pos not in dropped] if dropped else items


def _unsafe(items: Items, fail: Fail) -> set[int]:
    """Positions of the predictions naming a feature that is not a safe name (dead-lettered)."""
    unsafe = unsafe_feature_names([p for p, _ in items])
    for pos, reason in unsafe:
        fail(InvalidEvent(f"Prediction: {reason}"), items[pos][1], "validate")
    return {pos for pos, _ in unsafe}


def read_heads(
    mon: ModelMonitor, items: Items, newest: dict[str, float], fail: Fail
) -> tuple[Items, dict[str, np.ndarray] | None]:
    """A batch of heads of ``mon``'s model: the batch (heads, and whole predictions for the records
    the native decoder did not read) and the columns it read (those rows' cells empty, for the monitor
    to fill), or None if it read none (another version's batch: every record decoded whole).
    ``newest``: admission's newest event time per model, which then counts only the kept predictions."""
    got = mon.native_columns([p for p, _ in items], [r.value for _, r in items])  # type: ignore[misc]
    if got is None:
        kept, _ = _decode_whole(mon, items, range(len(items)), newest, fail)
        return kept, None
    read, failed = got
    if not failed:
        return items, read
    if 2 * len(failed) > len(items) and mon.native_version is not None:
        mon.declined(mon.native_version)  # most of the batch unread: see ModelMonitor.declined
    kept, keep = _decode_whole(mon, items, failed, newest, fail)
    return kept, read if keep is None else {name: col[keep] for name, col in read.items()}


def _decode_whole(
    mon: ModelMonitor, items: Items, positions: Sequence[int], newest: dict[str, float], fail: Fail
) -> tuple[Items, np.ndarray | None]:
    """The heads at ``positions`` decoded whole; the batch without those that do not decode or name an
    unsafe feature (dead-lettered), and which of its rows it kept (None: all)."""
    at = list(positions)
    new = list(items)
    dropped = set()
    for i, p in zip(at, decode_whole([items[i] for i in at], fail), strict=True):
        if p is None:
            dropped.add(i)
        else:
            new[i] = (p, items[i][1])
    decoded = [i for i in at if i not in dropped]
    dropped |= {decoded[k] for k in _unsafe([new[i] for i in decoded], fail)}
    if not dropped:
        return new, None
    keep = np.ones(len(items), dtype=bool)
    keep[list(dropped)] = False
    new = [item for item, k in zip(new, keep, strict=True) if k]
    model = mon.model
    if model in newest:  # admission counted the dropped heads' event times too
        t = max((p.event_time for p, _ in new), default=-math.inf)
        if t > mon.newest_event_time:
            newest[model] = t
        else:
            del newest[model]
    return new, keep
