"""Admission of a batch (:func:`admit`) decides as :func:`refusal` does, record by record, on its
inline common path and off it."""

from __future__ import annotations

import itertools
import math

import msgspec
import pytest

from driftline.contracts import MAX_STRING, Label, Prediction, encode
from driftline.errors import InvalidEvent
from driftline.transport import Record
from stream_processors.core.admission import admit, refusal
from stream_processors.core.schema import PredictionHead

P, L = "driftline.predictions", "driftline.labels"
SKEW = 300.0


def _record(kind: str, t: float, key: bytes | None, ts: float, value: object) -> tuple[Record, object]:
    """A record and its event (JSON has no NaN or inf: msgspec refuses them while decoding)."""
    if kind == "p":
        event: Prediction | Label = Prediction(
            prediction_id="a", model="m", model_version="1", event_time=0.0, features={}, prediction=value
        )
    else:
        event = Label(prediction_id="a", model="m", event_time=0.0, label=value)  # type: ignore[arg-type]
    raw = msgspec.json.decode(encode(event))
    raw["event_time"] = t
    body = msgspec.json.encode(raw)
    return Record(P if kind == "p" else L, body, key, 0, 0, ts), msgspec.json.decode(
        body, type=Prediction if kind == "p" else Label
    )


GRID = list(
    itertools.product(
        ["p", "l"],
        [0.0, 1_000.0, 1_250.0, 1_400.0, -1.0, 1e300],  # event times
        [b"m", b"x", b"", None],  # keys
        [0.0, 1_000.0, -5.0],  # record timestamps (0 and below: none)
        [1, "y", "y" * (MAX_STRING + 1)],  # predicted / true class
        [-math.inf, 1_000.0],  # the model's newest admitted event time before the batch
    )
)


@pytest.mark.parametrize("newest", [-math.inf, 1_000.0])
def test_admit_decides_each_record_as_refusal_does(newest: float) -> None:
    cases = [c for c in GRID if c[5] == newest]
    failed: list[tuple[Record, str]] = []
    for kind, t, key, ts, value, _ in cases:
        rec, event = _record(kind, t, key, ts, value)
        preds, labels, _ = admit(
            [rec], (P, L), SKEW, lambda m: newest, {}, lambda exc, r, stage: failed.append((r, str(exc)))
        )
        admitted = bool(preds) or bool(labels)
        why = refusal(event, value, rec, newest, SKEW)  # type: ignore[arg-type]
        assert admitted == (why == ""), (kind, t, key, ts, str(value)[:5], why)
        if why:
            assert failed[-1][0] is rec and why in failed[-1][1]
    assert len(failed) > len(cases) // 2  # most of the grid is refused, each for its own reason


def test_an_undecodable_record_and_a_foreign_topic_are_told_apart() -> None:
    failed: list[tuple[InvalidEvent, str]] = []
    recs = [Record(P, b"{not json", b"m", 0, 0, 1.0), Record("elsewhere", b"{}", b"m", 0, 1, 1.0)]
    assert admit(recs, (P, L), SKEW, lambda m: -math.inf, {}, lambda e, r, s: failed.append((e, s))) == (
        {},
        {},
        {},
    )
    assert [s for _, s in failed] == ["decode", "decode"]
    assert str(failed[0][0]).startswith("Prediction: ")
    assert "not an input of the processor" in str(failed[1][0])


def test_a_head_has_every_field_and_check_of_a_prediction_but_its_features() -> None:
    """PredictionHead (what admission decodes when the native decoder reads the features) mirrors
    Prediction field for field, so that a record fails or passes both the same way."""
    whole = {f.name: (f.type, f.default) for f in msgspec.structs.fields(Prediction) if f.name != "features"}
    head = {f.name: (f.type, f.default) for f in msgspec.structs.fields(PredictionHead)}
    assert head.pop("raw") == (msgspec.Raw, msgspec.Raw(b""))  # (what the join holds: set by hold)
    assert head == whole
    assert PredictionHead.__post_init__ is Prediction.__post_init__
