"""Names that reach paths, keys and labels are checked where events enter the core: a prediction
whose model, version or feature name is not a safe name is dead-lettered with the reason; every
other record of the batch is processed as if it had not been there."""

from __future__ import annotations

import json

import pytest
from events import record

from driftline.config import MonitorSettings, Topics
from driftline.contracts import DeadLetter, decode, encode
from driftline.transport import Record
from stream_processors.core.processor import ProcessorCore

TOPICS = Topics()


def raw_prediction(**override: object) -> Record:
    event = {
        "prediction_id": "bad-1",
        "model": "m",
        "model_version": "1",
        "event_time": 0.5,
        "features": {"x": 1.0, "c": "a"},
        "prediction": 1,
    }
    event.update(override)
    return Record(topic=TOPICS.predictions, value=json.dumps(event).encode(), key=b"m")


@pytest.mark.parametrize(
    ("override", "reason"),
    [
        ({"model": "../../etc"}, "$.model"),
        ({"model": "a/b"}, "$.model"),
        ({"model_version": "1/../../x"}, "$.model_version"),
        ({"model_version": ".."}, "$.model_version"),
        ({"features": {"x": 1.0, "../../x": 2.0}}, "feature name '../../x' is not a safe name"),
        ({"features": {"x": 1.0, "a b": 2.0}}, "feature name 'a b' is not a safe name"),
        ({"features": {f"f{i}": 1.0 for i in range(1001)}}, "$.features"),
        ({"features": {"x": 1.0, "c": "v" * 1025}}, "$.features"),
    ],
    ids=[
        "model-traversal",
        "model-slash",
        "version-traversal",
        "version-dots",
        "feature-traversal",
        "feature-space",
        "too-many-features",
        "huge-string",
    ],
)
def test_unsafe_names_are_dead_lettered_and_the_rest_is_processed(
    make_prediction, make_label, override: dict, reason: str
) -> None:
    good = [make_prediction(i) for i in range(20)]
    batch = [record(p) for p in good[:10]] + [raw_prediction(**override)] + [record(p) for p in good[10:]]
    batch += [record(make_label(i)) for i in range(20)]
    core = ProcessorCore(MonitorSettings(), TOPICS)
    out = core.process(batch)
    out.extend(core.drain())
    (dead,) = out.dead_letters
    assert reason in dead.reason and dead.original == batch[10].value
    assert sorted(s.prediction.prediction_id for s in out.scored) == sorted(p.prediction_id for p in good)

    core = ProcessorCore(MonitorSettings(), TOPICS)
    clean = core.process(batch[:10] + batch[11:])
    clean.extend(core.drain())
    assert [encode(s) for s in out.scored] == [encode(s) for s in clean.scored]


def test_dead_letter_says_where_and_why() -> None:
    out = ProcessorCore(MonitorSettings(), TOPICS).process([raw_prediction(model="../x")])
    dead = decode(DeadLetter, encode(out.dead_letters[0]))
    assert (dead.stage, dead.topic, dead.error_type) == ("decode", TOPICS.predictions, "InvalidEvent")
    assert not out.scored and not out.alerts
