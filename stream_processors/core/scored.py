"""Scored events on their way out: a prediction waits for its label as its record's bytes, and its
scored event is written around those bytes.

A prediction's features are read when it arrives (columns, drift statistics), not when its label
joins it. So the join holds a :class:`HeldPrediction`: the prediction without its features -- but for
the segment columns, which the segments read at the join -- plus the bytes it was decoded from;
:func:`encode_scored` copies those bytes into the scored event instead of formatting every feature
value again (the pipeline benchmark's stream: 50 features 6.7 -> 2.5 us a scored event, 200 features
16 -> 3.3 us), and 20,000 waiting predictions of 200 features keep 150 MB instead of 352
(``benchmarks/waiting.py``). A narrow prediction is held so too: whether its features were decoded
(msgspec) or read by the native decoder (:mod:`~.heads`, which decodes no features to hold), its
scored event is then the same bytes. The event is the same JSON document a consumer decodes: the
prediction as its producer sent it (fields this version does not know included), then the label.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from driftline.contracts import LabelValue, Prediction, Scored
from stream_processors.core.schema import PredictionHead

__all__ = ["HeldPrediction", "encode_scored", "hold", "without_features"]

_ENCODE = msgspec.json.Encoder().encode


class HeldPrediction(Prediction, frozen=True, kw_only=True, gc=False):
    """A prediction waiting for its label: ``features`` holds only the segment columns, ``raw`` the
    record's bytes (what a scored event carries). Never encoded itself: see :func:`encode_scored`."""

    raw: msgspec.Raw = msgspec.Raw(b"")


class _ScoredWire(msgspec.Struct, kw_only=True, gc=False):
    """:class:`~driftline.contracts.Scored`'s fields in its order, the prediction as raw JSON."""

    schema_version: int
    prediction: msgspec.Raw
    label: LabelValue
    label_time: float
    index: int
    features_dropped: bool


def hold(
    p: Prediction | PredictionHead, raw: bytes, keep: Sequence[str] = ()
) -> HeldPrediction | PredictionHead:
    """``p`` (decoded from ``raw``) as the join holds it: the features named in ``keep`` only. A head
    is held as it is, with ``raw`` set (~0.1 us, where a copy costs ~1 us; a version with segments to
    ``keep`` is never read as heads: :meth:`~.model_monitor.ModelMonitor._native_candidate`)."""
    if type(p) is PredictionHead:
        msgspec.structs.force_setattr(p, "raw", msgspec.Raw(raw))
        return p
    feats = p.features if keep and type(p) is Prediction else {}
    return HeldPrediction(
        schema_version=p.schema_version,
        prediction_id=p.prediction_id,
        model=p.model,
        model_version=p.model_version,
        event_time=p.event_time,
        features={k: feats[k] for k in keep if k in feats} if keep else {},
        prediction=p.prediction,
        score=p.score,
        probabilities=p.probabilities,
        raw=msgspec.Raw(raw),
    )


def encode_scored(s: Scored) -> bytes:
    """The scored event's JSON: around the prediction's own bytes when the join held them."""
    p = s.prediction
    if type(p) is HeldPrediction or type(p) is PredictionHead:
        return _ENCODE(
            _ScoredWire(
                schema_version=s.schema_version,
                prediction=p.raw,
                label=s.label,
                label_time=s.label_time,
                index=s.index,
                features_dropped=s.features_dropped,
            )
        )
    return _ENCODE(s)


def without_features(s: Scored) -> Scored:
    """``s`` with a plain prediction and no features, flagged ``features_dropped``: small enough to
    send (every other field is bounded by the contracts and admission)."""
    fields = {name: getattr(s.prediction, name) for name in Prediction.__struct_fields__}
    bare = Prediction(**(fields | {"features": {}}))  # a plain prediction: no held bytes
    return msgspec.structs.replace(s, prediction=bare, features_dropped=True)
