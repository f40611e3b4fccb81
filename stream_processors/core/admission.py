"""Admission: what a decoded prediction or label must satisfy before it may touch any state.

- **Keyed by its model.** Input topics are keyed by model name, so that all of a model's events land
  in one partition, in order, and its state lives in one processor instance. An unkeyed record, or
  one whose key is not its event's model, would be processed next to the wrong state (or race the
  right one in another instance): it is refused, with a reason that names the key to use.
- **On the clock.** Event time is the join's clock (:mod:`~stream_processors.core.join`); one event
  from the far future would advance a model's watermark and expire everything waiting. An event
  time must be finite, non-negative, and at most ``max_future_skew_s`` ahead of the record's
  timestamp -- or, for a record without one (timestamp <= 0: Kafka's "not available", the in-memory
  bus's default), of the newest event time already admitted for the model. The first event of a
  model without timestamps has nothing to be checked against; with Kafka every record has one.
- **Bounded values.** A text prediction or label holds at most :data:`~driftline.contracts.MAX_STRING`
  characters, as feature values do, so that a joined event's size is bounded by its features alone.

Pure and cheap: a few comparisons per event, no allocation unless the event is refused.

>>> from driftline.contracts import Label
>>> from driftline.transport import Record
>>> lab = Label(prediction_id="p1", model="churn", event_time=1_000.0, label=1)
>>> def check(key, timestamp=0.0):
...     record = Record("driftline.labels", b"", key, timestamp=timestamp)
...     return refusal(lab, lab.label, record, -math.inf, 300)
>>> check(b"churn", timestamp=990.0)
''
>>> check(None)[:40]
'unkeyed record: the key must be the even'
>>> check(b"churn", timestamp=500.0)
"event_time 1000.0 is 500 s ahead of the record's timestamp 500.0 (monitor.max_future_skew_s = 300)"
"""

from __future__ import annotations

import math

from driftline.contracts import MAX_STRING, Label, Prediction
from driftline.transport import Record

__all__ = ["refusal"]

_INF = math.inf


def refusal(event: Prediction | Label, value: object, record: Record, newest: float, max_skew: float) -> str:
    """Why ``event`` (decoded from ``record``) may not be processed, or ``""`` if it may.

    ``value``: its predicted or true class; ``newest``: the newest event time admitted so far for
    the event's model (``-inf``: none yet).
    """
    key, model = record.key, event.model
    if not key:
        return f"unkeyed record: the key must be the event's model name ({model!r})"
    if key != model.encode():
        return f"record key {key[:80]!r} is not the event's model {model!r}: the key must be the model name"
    t = event.event_time
    if not 0.0 <= t < _INF:  # NaN fails too
        return f"event_time {t!r} is not a time: it must be finite and >= 0 (seconds since the epoch)"
    ts = record.timestamp
    if 0.0 < ts < _INF:
        if t - ts > max_skew:
            return (
                f"event_time {t!r} is {t - ts:.0f} s ahead of the record's timestamp {ts!r} "
                f"(monitor.max_future_skew_s = {max_skew:g})"
            )
    elif newest > -_INF and t - newest > max_skew:
        return (
            f"event_time {t!r} is {t - newest:.0f} s ahead of the newest event time of model {model!r} "
            f"({newest!r}) and the record has no timestamp (monitor.max_future_skew_s = {max_skew:g})"
        )
    if type(value) is str and len(value) > MAX_STRING:
        what = "prediction" if isinstance(event, Prediction) else "label"
        return f"{what} value is {len(value):,} characters long (at most {MAX_STRING:,})"
    return ""
