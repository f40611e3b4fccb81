"""Bad input never crashes the processor and never changes what it says about the good input.

Each category of bad record is interleaved, at seeded random positions, into a good drifting stream
and fed through :class:`ProcessorCore` (and once, every category at once, through the in-process
runner). The scored events, metrics and alerts must be byte-identical to a run of the good stream
alone; every bad record must be in the dead letters with a reason and its offset -- except the
duplicates and orphans a real stream carries, which the join absorbs (counted, no output).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
import numpy as np
import pytest
from events import record

from driftline.config import MonitorSettings, Topics
from driftline.contracts import (
    MAX_DEAD_LETTER_BYTES,
    Alert,
    DeadLetter,
    Label,
    Prediction,
    Scored,
    decode,
    encode,
)
from driftline.transport import InMemoryBus, Record
from stream_processors.core.processor import CoreOutput, ProcessorCore
from stream_processors.runners.inprocess import ProcessorRunner

TOPICS = Topics()
P, L = TOPICS.predictions, TOPICS.labels
SETTINGS = MonitorSettings(reference_size=1000, window_size=250, performance_window=250, metrics_every=250)
BATCH = 700  # good records per core call; bad ones join the batch they are inserted into
OUTPUTS = (TOPICS.scored, TOPICS.metrics, TOPICS.alerts)
MB = 1_000_000

Maker = Callable[[int, float, np.random.Generator, list[Record]], Record]


def _pred(k: int, t: float, **over: Any) -> dict[str, Any]:
    event = {
        "prediction_id": f"bad-{k}",
        "model": "m",
        "model_version": "1",
        "event_time": t,
        "features": {"x0": 0.1, "x1": 0.2, "c0": "a"},
        "prediction": 1,
        "score": 0.5,
    }
    return {**event, **over}


def _lab(k: int, t: float, **over: Any) -> dict[str, Any]:
    return {"prediction_id": f"bad-{k}", "model": "m", "event_time": t, "label": 1, **over}


def _rec(topic: str, event: dict[str, Any] | bytes, key: bytes | None = b"m", ts: float = 0.0) -> Record:
    value = event if isinstance(event, bytes) else json.dumps(event).encode()
    return Record(topic=topic, value=value, key=key, timestamp=ts)


def _without(event: dict[str, Any], field: str) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k != field}


def _raw_number(k: int, t: float, where: str, literal: str) -> bytes:
    """A prediction whose ``where`` ("event_time" or feature "x0") holds a bare JSON ``literal``."""
    event = _pred(k, t)
    if where == "event_time":
        event["event_time"] = "@"
    else:
        event["features"]["x0"] = "@"
    return json.dumps(event).replace('"@"', literal).encode()


def _duplicate_prediction(k: int, t: float, rng: np.random.Generator, before: list[Record]) -> Record:
    """An earlier good prediction's id again, with other features: a replay or a buggy producer."""
    original = decode(Prediction, rng.choice([r for r in before if r.topic == P]).value)  # type: ignore[arg-type]
    return _rec(P, {**json.loads(encode(original)), "features": {"x0": 9.0, "x1": -9.0, "c0": "z"}})


def _duplicate_label(k: int, t: float, rng: np.random.Generator, before: list[Record]) -> Record:
    """An earlier good label's id again, with the other class."""
    original = decode(Label, rng.choice([r for r in before if r.topic == L]).value)  # type: ignore[arg-type]
    return _rec(L, {**json.loads(encode(original)), "label": 1 - int(original.label)})


@dataclass(frozen=True)
class Case:
    name: str
    make: Maker
    reason: str | None  # a fragment of the dead letter's reason; None: absorbed by the join, no dead letter


def case(name: str, reason: str | None, make: Callable[[int, float], Record]) -> Case:
    return Case(name, lambda k, t, rng, before: make(k, t), reason)


CASES = [
    case("empty_payload", "truncated", lambda k, t: _rec(P, b"")),
    case("truncated_json", "truncated", lambda k, t: _rec(P, json.dumps(_pred(k, t)).encode()[:40])),
    case("malformed_json", "malformed", lambda k, t: _rec(P, b'{"prediction_id": "x",, }')),
    case(
        "non_utf8",
        "UTF-8",
        lambda k, t: _rec(P, json.dumps(_pred(k, t)).encode().replace(b"bad-", b"\xff\xfe")),
    ),
    case("binary_garbage", "Prediction:", lambda k, t: _rec(P, np.random.default_rng(k).bytes(300))),
    case("empty_object", "missing required field", lambda k, t: _rec(P, b"{}")),
    case("json_array", "got `array`", lambda k, t: _rec(P, b"[1, 2, 3]")),
    case("json_scalar", "got `int`", lambda k, t: _rec(L, b"42")),
    case("json_null", "got `null`", lambda k, t: _rec(P, b"null")),
    case("deep_nesting", "RecursionError", lambda k, t: _rec(P, b'{"a":' * 10_000 + b"1" + b"}" * 10_000)),
    case(
        "deep_nesting_in_features",
        "features",
        lambda k, t: _rec(P, b'{"features": ' + b"[" * 10_000 + b"]" * 10_000 + b"}"),
    ),
    case(
        "missing_prediction_id", "prediction_id", lambda k, t: _rec(P, _without(_pred(k, t), "prediction_id"))
    ),
    case("missing_label_field", "label", lambda k, t: _rec(L, _without(_lab(k, t), "label"))),
    case(
        "missing_features",
        "missing feature(s) ['c0', 'x1']",
        lambda k, t: _rec(P, _pred(k, t, features={"x0": 1.0})),
    ),
    case("event_time_as_text", "$.event_time", lambda k, t: _rec(P, _pred(k, t, event_time="noon"))),
    case("event_time_as_bool", "$.event_time", lambda k, t: _rec(L, _lab(k, t, event_time=True))),
    case("features_as_list", "$.features", lambda k, t: _rec(P, _pred(k, t, features=[1, 2]))),
    case("label_as_object", "$.label", lambda k, t: _rec(L, _lab(k, t, label={"a": 1}))),
    case("score_above_one", "$.score", lambda k, t: _rec(P, _pred(k, t, score=1.5))),
    case(
        "text_in_numeric_feature",
        "must be numeric",
        lambda k, t: _rec(P, _pred(k, t, features={"x0": "high", "x1": 0.2, "c0": "a"})),
    ),
    case("nan_event_time", "malformed", lambda k, t: _rec(P, _raw_number(k, t, "event_time", "NaN"))),
    case("infinity_feature", "malformed", lambda k, t: _rec(P, _raw_number(k, t, "x0", "Infinity"))),
    case("overflowing_feature", "out of range", lambda k, t: _rec(P, _raw_number(k, t, "x0", "1e999"))),
    case("huge_feature", "out of range", lambda k, t: _rec(P, _raw_number(k, t, "x0", "1e300"))),
    case(
        "huge_event_time",
        "ahead of the newest event time",
        lambda k, t: _rec(P, _pred(k, t, event_time=1e300)),
    ),
    case("negative_event_time", "must be finite and >= 0", lambda k, t: _rec(L, _lab(k, t, event_time=-5.0))),
    case(
        "future_vs_timestamp",
        "ahead of the record's timestamp",
        lambda k, t: _rec(P, _pred(k, t + 401), ts=t + 1),
    ),
    case("future_no_timestamp", "ahead of the newest event time", lambda k, t: _rec(P, _pred(k, t + 10_000))),
    case("future_label", "ahead of the newest event time", lambda k, t: _rec(L, _lab(k, t + 1e9))),
    case(
        "one_mb_feature_text",
        "length <= 1024",
        lambda k, t: _rec(P, _pred(k, t, features={"x0": 1.0, "x1": 1.0, "c0": "a" * MB})),
    ),
    case("one_mb_garbage", "Prediction:", lambda k, t: _rec(P, b"\x00" * MB)),
    case("one_mb_label_text", "characters long", lambda k, t: _rec(L, _lab(k, t, label="y" * MB))),
    case(
        "ten_thousand_features",
        "length <= 1000",
        lambda k, t: _rec(P, _pred(k, t, features={f"f{i}": 0.0 for i in range(10_000)})),
    ),
    case("long_prediction_id", "$.prediction_id", lambda k, t: _rec(P, _pred(k, t, prediction_id="p" * 600))),
    case("unsafe_model_name", "$.model", lambda k, t: _rec(P, _pred(k, t, model="../etc"), key=b"../etc")),
    case("unsafe_version_name", "$.model_version", lambda k, t: _rec(P, _pred(k, t, model_version="1/../2"))),
    case(
        "unsafe_feature_name",
        "not a safe name",
        lambda k, t: _rec(P, _pred(k, t, features={"x0": 1.0, "x1": 1.0, "c0": "a", "../etc": 1.0})),
    ),
    case("unknown_schema_version", "schema_version 99", lambda k, t: _rec(P, _pred(k, t, schema_version=99))),
    case("null_key", "unkeyed record", lambda k, t: _rec(P, _pred(k, t), key=None)),
    case("empty_key", "unkeyed record", lambda k, t: _rec(L, _lab(k, t), key=b"")),
    case("wrong_key", "is not the event's model 'm'", lambda k, t: _rec(P, _pred(k, t), key=b"other")),
    case(
        "label_for_another_model",
        "is not the event's model 'other'",
        lambda k, t: _rec(L, _lab(k, t, model="other")),
    ),
    case("unknown_topic", "not an input", lambda k, t: _rec("driftline.elsewhere", _pred(k, t))),
    Case("duplicate_prediction", _duplicate_prediction, None),
    Case("duplicate_label", _duplicate_label, None),
    case("orphan_label", None, lambda k, t: _rec(L, _lab(k, t, prediction_id=f"ghost-{k}"))),
]
BY_NAME = {c.name: c for c in CASES}


def interleave(
    good: list[Record], cases: list[Case], per_case: int, seed: int
) -> tuple[list[list[Record]], list[tuple[Case, Record]]]:
    """The good records in batches of :data:`BATCH` with ``per_case`` bad records of each case
    inserted at random positions after the first 100 (a model's first events set its clock when
    records carry no timestamp); duplicates come after their originals. Each bad record's offset is
    unique (from 1,000,000). Returns (batches, [(case, bad record)])."""
    rng = np.random.default_rng(seed)
    inserts: dict[int, list[Record]] = {}
    bad: list[tuple[Case, Record]] = []
    for c in cases:
        for _ in range(per_case):
            pos = int(rng.integers(100, len(good)))
            t = max(json.loads(r.value)["event_time"] for r in good[pos - 3 : pos])  # the stream's time there
            rec = msgspec.structs.replace(c.make(len(bad), t, rng, good[:pos]), offset=1_000_000 + len(bad))
            inserts.setdefault(pos, []).append(rec)
            bad.append((c, rec))
    batches: list[list[Record]] = []
    for start in range(0, len(good), BATCH):
        batch: list[Record] = []
        for i in range(start, min(start + BATCH, len(good))):
            batch += inserts.get(i, [])
            batch.append(good[i])
        batches.append(batch)
    return batches, bad


def run_core(batches: list[list[Record]]) -> tuple[ProcessorCore, CoreOutput]:
    core = ProcessorCore(SETTINGS, TOPICS)
    out = CoreOutput()
    for batch in batches:
        out.extend(core.process(batch))
    out.extend(core.drain())  # the input has ended
    return core, out


def sent(out: CoreOutput) -> dict[str, list[tuple[bytes | None, bytes, float | None]]]:
    """What the core's outputs put on each output topic, as bytes."""
    by_topic: dict[str, list[tuple[bytes | None, bytes, float | None]]] = {t: [] for t in OUTPUTS}
    for topic, key, value, ts in out.messages(TOPICS):
        if topic in by_topic:
            by_topic[topic].append((key, value, ts))
    return by_topic


@pytest.fixture
def good(drifting_stream) -> list[Record]:
    records, _ = drifting_stream(n=3000, at=2000, shift=1.0)
    return records


_CLEAN: dict[str, Any] = {}


def clean_run(good: list[Record]) -> tuple[ProcessorCore, CoreOutput]:
    if "core" not in _CLEAN:
        batches, _ = interleave(good, [], 0, seed=0)
        _CLEAN["core"] = run_core(batches)
    return _CLEAN["core"]  # type: ignore[no-any-return]


def check_dead_letters(dead: list[DeadLetter], bad: list[Record]) -> None:
    """Every bad record that is not absorbed by the join has exactly one dead letter, with a reason."""
    expected = {(r.topic, r.offset): r for r in bad}
    assert sorted((d.topic, d.offset) for d in dead) == sorted(expected)
    for d in dead:
        r = expected[(d.topic, d.offset)]
        assert d.reason and d.stage in ("decode", "validate")
        assert d.original == r.value[:MAX_DEAD_LETTER_BYTES] and d.truncated == (
            len(r.value) > MAX_DEAD_LETTER_BYTES
        )
        assert (d.original_size, d.original_sha256) == (len(r.value), hashlib.sha256(r.value).hexdigest())
        assert len(encode(d)) < 100_000  # a 1 MB record makes a small dead letter
        assert d.key_b64 == (None if r.key is None else base64.b64encode(r.key).decode())


def test_the_clean_stream_says_something(good) -> None:
    """The comparison below is worth something only if the good stream has alerts and metrics."""
    _, out = clean_run(good)
    assert {a.type for a in out.alerts} >= {"data_drift"} and len(out.metrics) > 50
    assert len(out.scored) == 3000 and out.dead_letters == []


@pytest.mark.parametrize("name", list(BY_NAME))
def test_bad_input_changes_nothing_for_the_good(good, name: str) -> None:
    c = BY_NAME[name]
    batches, bad = interleave(good, [c], per_case=4, seed=sum(name.encode()))
    core, out = run_core(batches)
    _, clean = clean_run(good)
    assert sent(out) == sent(clean)
    if c.reason is None:  # absorbed by the join: counted, never dead-lettered
        assert out.dead_letters == []
        joiner = core.models["m"].joiner
        counts = {**joiner.counts, "waiting_orphans": joiner.remembered()[1]}
        counted = {"duplicate_prediction": "duplicate_predictions", "duplicate_label": "duplicate_labels"}
        assert counts[counted.get(name, "waiting_orphans")] == 4
        return
    check_dead_letters(out.dead_letters, [r for _, r in bad])
    for d in out.dead_letters:
        assert c.reason in d.reason, d.reason


def test_every_category_at_once_through_the_runner(good) -> None:
    """All categories mixed into one stream on the in-memory bus, through the in-process runner:
    the same outputs as the good stream alone, every bad record dead-lettered with its offset."""
    mixed, bad = interleave(good, CASES, per_case=2, seed=7)
    clean, _ = through_runner([good])
    bus, offsets = through_runner(mixed)
    for topic in OUTPUTS:
        assert [r.value for r in bus.log(topic)] == [r.value for r in clean.log(topic)], topic
    assert len(bus.log(TOPICS.scored)) == 3000
    dead = [decode(DeadLetter, r.value) for r in bus.log(TOPICS.dlq)]
    expected = [msgspec.structs.replace(r, offset=offsets[r.offset]) for c, r in bad if c.reason is not None]
    check_dead_letters(dead, expected)


def through_runner(
    batches: list[list[Record]], batch_size: int = 100_000, core: ProcessorCore | None = None
) -> tuple[InMemoryBus, dict[int, int]]:
    """The bus after the in-process runner read every record (by default in one batch, so that
    bad records do not move the good ones' batch boundaries), and each record's offset on the bus
    by its offset in ``batches``."""
    bus = InMemoryBus()
    sink = bus.sink()
    offsets: dict[int, int] = {}
    for r in (r for batch in batches for r in batch):
        offsets[r.offset] = len(bus.log(r.topic))
        sink.send(r.topic, r.key, r.value, r.timestamp)
    source = bus.source([P, L, "driftline.elsewhere"], "processor")
    core = core or ProcessorCore(SETTINGS, TOPICS)
    runner = ProcessorRunner(core, source, bus.sink(), batch_size=batch_size)
    while runner.run_once():
        pass
    runner.drain()
    assert not runner.failed
    return bus, offsets


def poisoned_core() -> ProcessorCore:
    """A core with a bug: its model monitors raise on a prediction with id "poison"."""
    core = ProcessorCore(SETTINGS, TOPICS)
    monitor = core._monitor

    def poisoned(model: str) -> Any:
        mon = monitor(model)
        if "on_predictions" not in vars(mon):
            on_predictions = mon.on_predictions

            def raising(preds: list[Prediction], *args: Any) -> Any:
                if any(p.prediction_id == "poison" for p in preds):
                    raise ZeroDivisionError("a bug that only this record triggers")
                return on_predictions(preds, *args)

            mon.on_predictions = raising  # type: ignore[method-assign]
        return mon

    core._monitor = poisoned  # type: ignore[method-assign]
    return core


def test_a_poison_pill_is_dead_lettered_and_the_partition_goes_on(good) -> None:
    """A record the core raises on (a bug, not bad input): its batch is retried record by record,
    the record is dead-lettered at stage "process" with the exception, everything else is processed
    and committed as usual."""
    poison = _rec(P, _pred(0, 1000.0, prediction_id="poison"))
    batches = [good[:2000] + [msgspec.structs.replace(poison, offset=1_000_000)] + good[2000:]]
    clean, _ = through_runner([good], batch_size=700)
    bus, offsets = through_runner(batches, batch_size=700, core=poisoned_core())
    assert [r.value for r in bus.log(TOPICS.scored)] == [r.value for r in clean.log(TOPICS.scored)]
    # (not the metrics: they are emitted where batches end, and the retry ran that batch record by record)
    assert [decode(Alert, r.value).alert_id for r in bus.log(TOPICS.alerts)] == [
        decode(Alert, r.value).alert_id for r in clean.log(TOPICS.alerts)
    ]
    (dead,) = [decode(DeadLetter, r.value) for r in bus.log(TOPICS.dlq)]
    assert (dead.stage, dead.offset, dead.error_type) == ("process", offsets[1_000_000], "ZeroDivisionError")
    assert dead.reason == "processing raised ZeroDivisionError: a bug that only this record triggers"
    assert bus._committed[("processor", P)] == len(bus.log(P))  # every input committed: nothing stuck


def test_a_scored_event_never_exceeds_the_output_limit(make_prediction, make_label) -> None:
    """A valid prediction near 1 MB (1,000 features of 900 characters) is scored without its
    features, flagged; its neighbours keep theirs."""
    big = {f"f{i:03d}": "v" * 900 for i in range(997)} | {"x": 1.0, "c": "a"}
    preds = [make_prediction(0), make_prediction(1, features={"x": 2.0, "c": "b", **big}), make_prediction(2)]
    records = [record(p) for p in preds] + [record(make_label(i)) for i in range(3)]
    assert len(records[1].value) > SETTINGS.max_output_bytes
    core = ProcessorCore(SETTINGS, TOPICS)
    out = core.process(records)
    out.extend(core.drain())
    sizes = {}
    for topic, _, value, _ in out.messages(TOPICS):
        if topic == TOPICS.scored:
            s = decode(Scored, value)
            sizes[s.prediction.prediction_id] = (len(value), s.features_dropped, len(s.prediction.features))
    assert sizes["m-1"][:1] < (SETTINGS.max_output_bytes,) and sizes["m-1"][1:] == (True, 0)
    assert sizes["m-0"][1:] == sizes["m-2"][1:] == (False, 2)
