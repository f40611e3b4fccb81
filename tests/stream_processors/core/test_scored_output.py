"""A prediction's scored event carries it as the producer sent it: the join holds the record's bytes
(and the segment columns), not the decoded features, through a checkpoint too -- whatever the width,
and whether its features were decoded by msgspec or read by the native decoder."""

from __future__ import annotations

import pickle

from events import record

from driftline.config import MonitorSettings, Topics
from driftline.contracts import Prediction, Scored, decode, encode
from driftline.spec import ModelSpec
from driftline.transport import Record
from stream_processors.core.processor import ProcessorCore
from stream_processors.core.schema import WIDE

TOPICS = Topics()
SETTINGS = MonitorSettings(reference_size=100, window_size=50, metrics_every=50)
# a wide prediction (>= WIDE features) in the producer's own formatting and key order, with a
# field this version does not know
NUMERIC = [f"x{k}" for k in range(WIDE)]
RAW = (
    b'{"model":"m","prediction_id":"m-0","model_version":"1","event_time":0.0,"features":{'
    + b",".join(b'"%s":0.%d000' % (name.encode(), k) for k, name in enumerate(NUMERIC))
    + b',"c":"a","note":"kept"},"score":0.7,"prediction":1,"trace":"abc"}'
)


def _scored(core: ProcessorCore, records: list[Record]) -> list[bytes]:
    """The scored events of ``records``, then of a drain (the inputs end: what waits is merged)."""
    out = core.process(records)
    out.extend(core.drain())
    return [value for topic, _, value, _ in out.messages(TOPICS) if topic == TOPICS.scored]


def test_the_scored_event_carries_the_predictions_own_bytes(make_label) -> None:
    core = ProcessorCore(SETTINGS, TOPICS)
    core.process([Record(TOPICS.predictions, RAW, b"m", 0, 0, 1.0)])
    (value,) = _scored(core, [record(make_label(0))])
    assert RAW in value  # verbatim: no feature value formatted again
    expected = Scored(prediction=decode(Prediction, RAW), label=1, label_time=0.0, index=0)
    assert decode(Scored, value) == expected  # what a consumer reads: the whole prediction
    assert decode(Scored, value) == decode(Scored, encode(expected))


def test_a_waiting_prediction_holds_its_bytes_and_only_its_segment_columns(make_prediction) -> None:
    kinds = dict.fromkeys(NUMERIC, "numeric") | {"c": "categorical", "note": "ignore"}
    spec = ModelSpec(features=kinds, segments=["c"])  # type: ignore[arg-type]
    plain, segmented = ProcessorCore(SETTINGS, TOPICS), ProcessorCore(SETTINGS, TOPICS, models={"m": spec})
    rec = Record(TOPICS.predictions, RAW, b"m", 0, 0, 1.0)
    for core, held_features in ((plain, {}), (segmented, {"c": "a"})):
        _scored(core, [rec])  # merged: waiting for its label
        (pending,) = core.models["m"].joiner.__getstate__()["_pending"].values()
        assert pending[0].features == held_features and bytes(pending[0].raw) == RAW  # type: ignore[attr-defined]
    narrow = ProcessorCore(SETTINGS, TOPICS)  # a few features: held as its bytes too
    _scored(narrow, [record(make_prediction(0))])
    (pending,) = narrow.models["m"].joiner.__getstate__()["_pending"].values()
    assert pending[0].features == {} and bytes(pending[0].raw) == encode(make_prediction(0))  # type: ignore[attr-defined]


def test_scored_events_are_the_same_bytes_after_a_checkpoint(make_prediction, make_label) -> None:
    wide = lambda i: {name: i / (k + 3) for k, name in enumerate(NUMERIC)} | {"c": "ab"[i % 2]}  # noqa: E731
    preds = [record(make_prediction(i, features=wide(i))) for i in range(300)]
    labels = [record(make_label(i, i % 2)) for i in range(300)]
    once = ProcessorCore(SETTINGS, TOPICS)
    once.process(preds)
    expected = _scored(once, labels)

    before = ProcessorCore(SETTINGS, TOPICS)
    before.process(preds)
    saved = pickle.dumps(before.models_in(0))  # what a snapshot holds, predictions waiting
    after = ProcessorCore(SETTINGS, TOPICS)
    after.adopt(0, pickle.loads(saved))
    assert _scored(after, labels) == expected and len(expected) == 300
