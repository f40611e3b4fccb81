"""The processor core through the in-process runner: drift flagged on the right feature within a
bounded delay, nothing before it, bad input dead-lettered while processing goes on, replays absorbed."""

from __future__ import annotations

import pytest
from events import record
from sklearn.metrics import roc_auc_score

from detectors import get_task
from driftline.config import MonitorSettings, Topics
from driftline.contracts import Alert, DeadLetter, Label, Metric, Scored, decode, encode
from driftline.errors import ConfigError
from driftline.transport import InMemoryBus, Record
from stream_processors.core.processor import ProcessorCore
from stream_processors.runners.inprocess import ProcessorRunner

TOPICS = Topics()
SETTINGS = MonitorSettings(reference_size=2000, window_size=500, metrics_every=500)


def run(records: list[Record], settings: MonitorSettings = SETTINGS, batch: int = 700) -> InMemoryBus:
    bus = InMemoryBus()
    sink = bus.sink()
    for r in records:
        sink.send(r.topic, r.key, r.value)
    runner = ProcessorRunner(
        ProcessorCore(settings, TOPICS),
        bus.source([TOPICS.predictions, TOPICS.labels], "p"),
        bus.sink(),
        batch_size=batch,
    )
    while runner.run_once():
        pass
    runner.drain()  # the input has ended
    return bus


def alerts(bus: InMemoryBus) -> list[Alert]:
    return [decode(Alert, r.value) for r in bus.log(TOPICS.alerts)]


def test_shifted_feature_is_flagged_within_two_windows(drifting_stream) -> None:
    records, at = drifting_stream(n=8000, at=5000, shift=0.5)
    found = [a for a in alerts(run(records)) if a.type == "data_drift"]
    assert [a.feature for a in found] == ["x1"]
    a = found[0]
    assert at <= a.detected_at_index < at + 2 * SETTINGS.window_size
    assert a.window.start_index <= a.detected_at_index < a.window.end_index
    # the effect of the rows since the estimated change point: a short run that crossed the threshold
    # early overstates the shift a little (it was picked for being high)
    assert a.effect == pytest.approx(0.5, abs=0.35) and a.direction == "increase"
    assert a.value > a.threshold and a.statistic == "cusum_llr"
    assert a.p_value is not None and a.p_value < 1e-3 and at - 50 <= a.window.start_index
    assert a.reference is not None and a.reference.n == SETTINGS.reference_size
    assert (a.reference.start_index, a.reference.end_index) == (0, SETTINGS.reference_size)


@pytest.mark.parametrize("seed", range(3))
def test_no_alert_without_drift(drifting_stream, seed: int) -> None:
    records, _ = drifting_stream(n=8000, at=8000, shift=0.0, seed=seed)
    assert alerts(run(records)) == []


def test_concept_drift_and_performance_alerts_follow_error_increase(drifting_stream) -> None:
    records, _ = drifting_stream(n=6000, at=6000, shift=0.0)
    # flip every label after prediction 4000: the model becomes wrong 90% of the time
    flipped = []
    for r in records:
        if r.topic == TOPICS.labels:
            lab = decode(Label, r.value)
            if int(lab.prediction_id.split("-")[1]) >= 4000:
                lab = Label(
                    prediction_id=lab.prediction_id,
                    model=lab.model,
                    event_time=lab.event_time,
                    label=1 - int(lab.label),
                )
                r = Record(topic=r.topic, key=r.key, value=encode(lab))
        flipped.append(r)
    found = alerts(run(flipped))
    kinds: dict[str, Alert] = {}
    for a in found:
        kinds.setdefault(a.type, a)  # the first of each type
    assert {"concept_drift", "performance"} <= set(kinds)
    (gap,) = [a for a in found if a.statistic == "estimate_gap_z"]  # scores as confident, labels say no
    assert gap.message.startswith("estimate unreliable -- likely concept drift")
    assert gap.before is not None and gap.after is not None and gap.before - gap.after > 0.3
    assert 4000 <= kinds["concept_drift"].detected_at_index < 4200
    assert 4000 <= kinds["performance"].detected_at_index < 5000
    assert all(a.detected_at_index >= 4000 for a in found)


def test_malformed_events_go_to_dead_letter_and_processing_continues(drifting_stream) -> None:
    records, _ = drifting_stream(n=3000, at=3000, shift=0.0)
    bad = [
        Record(topic=TOPICS.predictions, value=b'{"oops": ', offset=7),
        Record(topic=TOPICS.predictions, value=b'{"prediction_id": "z", "model": "m"}', offset=8),
        Record(
            topic=TOPICS.labels, value=b'{"prediction_id": "z", "model": "m", "event_time": "x", "label": 1}'
        ),
        # valid JSON, but a numeric feature of this model arrives as text
        Record(
            topic=TOPICS.predictions,
            key=b"m",
            value=b'{"prediction_id": "w", "model": "m", "model_version": "1", '
            b'"event_time": 1.0, "features": {"x0": "high", "x1": 0.1, "c0": "a"}, "prediction": 1}',
        ),
    ]
    bus = run(records[:100] + bad + records[100:])
    dead = {d.original: d for d in (decode(DeadLetter, r.value) for r in bus.log(TOPICS.dlq))}
    assert sorted(dead) == sorted(b.value for b in bad)  # each bad record, with its original bytes
    first, missing, label, typed = (dead[b.value] for b in bad)
    assert "truncated" in first.reason and first.stage == "decode"
    assert "missing required field" in missing.reason
    assert "$.event_time" in label.reason and label.topic == TOPICS.labels
    assert "feature 'x0' must be numeric" in typed.reason and typed.stage == "validate"
    # every valid labelled prediction, before and after the bad ones, was scored
    assert len(bus.log(TOPICS.scored)) == 3000


def test_replayed_batch_is_not_double_counted(drifting_stream) -> None:
    records, _ = drifting_stream(n=6000, at=4000, shift=1.0)
    once = run(records)
    twice = run(records + records)
    assert len(twice.log(TOPICS.scored)) == len(once.log(TOPICS.scored)) == 6000
    assert [a.alert_id for a in alerts(twice)] == [a.alert_id for a in alerts(once)]


def test_metrics_match_reference_implementations(drifting_stream) -> None:
    records, _ = drifting_stream(n=4000, at=4000, shift=0.0)
    bus = run(
        records,
        MonitorSettings(reference_size=2000, window_size=500, performance_window=1000, metrics_every=1000),
    )
    metrics = [decode(Metric, r.value) for r in bus.log(TOPICS.metrics)]
    scored = [decode(Scored, r.value) for r in bus.log(TOPICS.scored)]
    acc = next(m for m in reversed(metrics) if m.name == "accuracy")
    auc = next(m for m in reversed(metrics) if m.name == "roc_auc")
    end = next(k for k, s in enumerate(scored) if s.index == acc.window.end_index - 1)
    last = scored[end - 999 : end + 1]  # the 1000 labelled predictions the metric covers
    right = get_task("binary").correct([s.label for s in last], [s.prediction.prediction for s in last])
    assert acc.value == pytest.approx(right.mean())
    assert auc.value == pytest.approx(
        roc_auc_score([s.label for s in last], [s.prediction.score for s in last])
    )
    assert acc.window.n == 1000 and acc.window.end_index > 3000
    # the label-free estimate, calibrated on the first labelled window, tracks realised accuracy
    expected = next(m for m in reversed(metrics) if m.name == "expected_accuracy")
    assert expected.value == pytest.approx(acc.value, abs=0.03)


def test_bad_detector_config_fails_at_start_up() -> None:
    with pytest.raises(ConfigError, match="valid names: adwin"):
        ProcessorCore(MonitorSettings(error_detector="adwn"), TOPICS)


def test_state_of_old_versions_is_evicted(make_prediction, make_label) -> None:
    core = ProcessorCore(MonitorSettings(max_versions=2), TOPICS)
    recs = []
    for v in range(5):  # five retrains: v0..v4
        for i in range(v * 100, v * 100 + 100):
            recs.append(record(make_prediction(i, version=str(v))))
    recs.append(record(make_label(5)))  # a late label for v0
    out = core.process(recs)
    assert list(core.models["m"].versions) == ["3", "4"]
    assert len(out.scored) == 1 and out.dead_letters == []  # still joined and published, nothing lost
