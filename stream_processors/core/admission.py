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
:func:`admit` decodes a batch and applies these checks to each record; :func:`refusal` says why one
is refused.

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
from collections.abc import Callable, Collection, Sequence

import msgspec

from driftline.contracts import MAX_STRING, Label, Prediction, decode
from driftline.errors import InvalidEvent
from driftline.transport import Record
from stream_processors.core.schema import PredictionHead

__all__ = ["admit", "decode_whole", "refusal"]

_INF = math.inf
_PRED, _LABEL = msgspec.json.Decoder(Prediction), msgspec.json.Decoder(Label)
_HEAD = msgspec.json.Decoder(PredictionHead)

Admitted = tuple[
    dict[str, list[tuple[Prediction | PredictionHead, Record]]], dict[str, list[Label]], dict[str, float]
]


def admit(
    records: Sequence[Record],
    inputs: tuple[str, str],
    max_skew: float,
    newest_of: Callable[[str], float],
    partition_of: dict[str, int],
    fail: Callable[[InvalidEvent, Record, str], object],
    heads: Collection[bytes] = (),
) -> Admitted:
    """Decode and check each record of ``inputs`` (predictions topic, labels topic): the admitted
    predictions (with their records; keyed by one of ``heads``, as :class:`~.schema.PredictionHead`)
    and labels by model, and each model's newest admitted event time (``newest_of``: before the batch;
    ``-inf``: none). Each other record goes to ``fail(reason, record, stage)``, stage "decode" or
    "validate"; ``partition_of`` learns each admitted model's partition."""
    t_pred, t_label = inputs
    preds: dict[str, list[tuple[Prediction | PredictionHead, Record]]] = {}
    labels: dict[str, list[Label]] = {}
    newest: dict[str, float] = {}
    keys: dict[str, bytes] = {}  # model name -> the record key it needs, for this batch
    dec_pred, dec_label, dec_head = _PRED.decode, _LABEL.decode, _HEAD.decode
    for rec in records:
        event: Prediction | PredictionHead | Label
        pred: Prediction | PredictionHead | None = None
        lab: Label | None = None
        topic = rec.topic
        try:  # the decoders themselves; a record that fails takes decode()'s path for its reason
            if topic == t_pred:
                event = pred = dec_head(rec.value) if heads and rec.key in heads else dec_pred(rec.value)
                value = pred.prediction
            elif topic == t_label:
                event = lab = dec_label(rec.value)
                value = lab.label
            else:
                fail(_foreign(topic, inputs), rec, "decode")
                continue
        except Exception:
            fail(_undecodable(rec.value, Prediction if topic == t_pred else Label), rec, "decode")
            continue
        model = event.model
        known = newest.get(model)
        if known is None:
            known = newest[model] = newest_of(model)
        t, ts, key = event.event_time, rec.timestamp, keys.get(model)
        if key is None:
            key = keys[model] = model.encode()
        # the common case inline (keyed, on the clock, bounded): refusal() says "" of it, ~0.2 us later
        ok = rec.key == key and 0.0 <= t < _INF and 0.0 < ts < _INF and t - ts <= max_skew
        if not ok or (type(value) is str and len(value) > MAX_STRING):
            why = refusal(event, value, rec, known, max_skew)
            if why:
                fail(InvalidEvent(f"{'Label' if lab is not None else 'Prediction'}: {why}"), rec, "validate")
                continue
        if t > known:
            newest[model] = t
        partition_of[model] = rec.partition
        if pred is not None:  # (not isinstance: ~100 ns for a label, per record)
            preds.setdefault(model, []).append((pred, rec))
        elif lab is not None:
            labels.setdefault(model, []).append(lab)
    return preds, labels, newest


def _foreign(topic: str, inputs: tuple[str, str]) -> InvalidEvent:
    return InvalidEvent(
        f"topic {topic!r} is not an input of the processor (inputs: {inputs[0]!r}, {inputs[1]!r})"
    )


def _undecodable(value: bytes, kind: type[Prediction] | type[Label]) -> InvalidEvent:
    """Why ``value`` does not decode as ``kind``, as :func:`~driftline.contracts.decode` says it."""
    try:
        decode(kind, value)
    except InvalidEvent as exc:
        return exc
    return InvalidEvent(f"{kind.__name__}: undecodable")  # pragma: no cover -- decode raised above


def refusal(
    event: Prediction | PredictionHead | Label, value: object, record: Record, newest: float, max_skew: float
) -> str:
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
        what = "label" if isinstance(event, Label) else "prediction"
        return f"{what} value is {len(value):,} characters long (at most {MAX_STRING:,})"
    return ""


def decode_whole(
    items: Sequence[tuple[Prediction | PredictionHead, Record]],
    fail: Callable[[InvalidEvent, Record, str], object],
) -> list[Prediction | None]:
    """Predictions :func:`admit` decoded as heads, decoded whole from their records (those the native
    decoder did not read), in order; one that does not decode is None, and went to ``fail(reason,
    record, "decode")`` with the reason :func:`admit` gives. (A record also refused for another reason
    -- its key, its clock -- was refused for that one: a head passes the other checks first.)"""
    whole: list[Prediction | None] = []
    for p, rec in items:
        if type(p) is Prediction:
            whole.append(p)
            continue
        try:
            whole.append(_PRED.decode(rec.value))
        except Exception:
            fail(_undecodable(rec.value, Prediction), rec, "decode")
            whole.append(None)
    return whole
