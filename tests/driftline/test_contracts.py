"""Events round-trip as plain JSON and every boundary rejects bad input with a precise reason."""

from __future__ import annotations

import json

import pytest

from driftline.contracts import (
    Alert,
    DeadLetter,
    Label,
    ModelUpdate,
    Prediction,
    RetrainRequest,
    Window,
    decode,
    encode,
)
from driftline.errors import InvalidEvent

W = Window(start_index=0, end_index=10, start_time=1.0, end_time=2.0, n=10)
ALERT = Alert(
    alert_id="a",
    type="data_drift",
    model="m",
    model_version="1",
    feature="x",
    statistic="ks_p_value",
    value=1e-9,
    threshold=1e-3,
    window=W,
    detected_at_index=9,
    detected_at_time=2.0,
)


@pytest.mark.parametrize(
    "event",
    [
        Prediction(
            prediction_id="p",
            model="m",
            model_version="1",
            event_time=1.0,
            features={"x": 1.5, "c": "a", "missing": None},
            prediction="yes",
            score=0.2,
        ),
        Label(prediction_id="p", model="m", event_time=2.0, label=True),
        ALERT,
        RetrainRequest(request_id="r", model="m", model_version="1", alert=ALERT),
        ModelUpdate(
            model="m",
            version="2",
            previous_version="1",
            artifact_uri="file:///x",
            metrics={"acc": 0.9},
            trained_on=W,
        ),
    ],
)
def test_round_trip_is_plain_json(event) -> None:
    raw = encode(event)
    assert json.loads(raw)["schema_version"] == 1  # any client can read it
    assert decode(type(event), raw) == event


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"{not json", "malformed"),
        (
            b'{"model": "m", "model_version": "1", "event_time": 1, "features": {}, "prediction": 1}',
            "missing required field `prediction_id`",
        ),
        (
            b'{"prediction_id": "p", "model": "m", "model_version": "1", "event_time": "yesterday", '
            b'"features": {},'
            b' "prediction": 1}',
            "Expected `float`, got `str` - at `$.event_time`",
        ),
        (
            b'{"prediction_id": "p", "model": "m", "model_version": "1", "event_time": 1, "features": {},'
            b' "prediction": 1, "score": 1.5}',
            "Expected `float` <= 1.0",
        ),
        (
            b'{"prediction_id": "", "model": "m", "model_version": "1", "event_time": 1, "features": {},'
            b' "prediction": 1}',
            "length >= 1",
        ),
        (
            b'{"schema_version": 9, "prediction_id": "p", "model": "m", "model_version": "1", '
            b'"event_time": 1,'
            b' "features": {}, "prediction": 1}',
            "schema_version 9 is not supported",
        ),
    ],
)
def test_invalid_prediction_is_rejected_with_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(InvalidEvent) as err:
        decode(Prediction, raw)
    assert reason in str(err.value)
    assert str(err.value).startswith("Prediction: ")


def test_dead_letter_keeps_original_bytes_and_position() -> None:
    raw = b"\xff\x00 not an event"
    d = DeadLetter.of(
        stage="decode", exc=InvalidEvent("bad"), value=raw, topic="t", partition=2, offset=41, key=b"m"
    )
    back = decode(DeadLetter, encode(d))
    assert (back.original, back.reason, back.partition, back.offset, back.error_type) == (
        raw,
        "bad",
        2,
        41,
        "InvalidEvent",
    )
