"""Segments: per-slice metrics and drift, the slice named in what it raises, within the model's budget."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from detectors.calibration import DEFAULT_FALSE_ALARMS_PER_100K
from driftline.config import MonitorSettings, RoutingSettings
from driftline.contracts import Alert, Label, Metric, Prediction, Window
from driftline.spec import ModelSpec
from stream_processors.control.incidents import IncidentBook
from stream_processors.core.model_monitor import ModelMonitor
from stream_processors.core.segments import OTHER, SegmentColumn, level_settings

FEATURES = {"x0": "numeric", "x1": "numeric", "channel": "categorical", "region": "ignore"}
CHANNELS, SHARES = ["web", "app", "store"], [0.2, 0.45, 0.35]
SETTINGS = MonitorSettings(reference_size=500, window_size=200, performance_window=300, metrics_every=100)
DRIFT = ("data_drift", "prediction_drift", "multivariate_drift")


def make_stream(
    n: int, seed: int, *, flip_web: float = 0.0, change: int | None = None
) -> tuple[list[Prediction], list[Label]]:
    """Calibrated scores (labels drawn from them), channel web/app/store and region eu/us; from
    ``change`` on, a share ``flip_web`` of channel=web's labels is flipped (its accuracy drops)."""
    rng = np.random.default_rng(seed)
    channel = rng.choice(CHANNELS, n, p=SHARES)
    region = rng.choice(["eu", "us"], n)
    x = rng.normal(0, 1, (n, 2))
    score = 1 / (1 + np.exp(-3 * x[:, 0]))
    label = (rng.random(n) < score).astype(int)
    if change is not None:
        flip = (np.arange(n) >= change) & (channel == "web") & (rng.random(n) < flip_web)
        label[flip] = 1 - label[flip]
    preds = [
        Prediction(
            prediction_id=str(i),
            model="m",
            model_version="1",
            event_time=float(i),
            features={"x0": x[i, 0], "x1": x[i, 1], "channel": str(channel[i]), "region": str(region[i])},
            prediction=int(score[i] >= 0.5),
            score=float(score[i]),
        )
        for i in range(n)
    ]
    labels = [
        Label(prediction_id=str(i), model="m", event_time=i + 0.5, label=int(label[i])) for i in range(n)
    ]
    return preds, labels


def run(
    monitor: ModelMonitor, preds: list[Prediction], labels: list[Label], *, drain: bool = True
) -> tuple[list[Alert], list[Metric]]:
    alerts: list[Alert] = []
    metrics: list[Metric] = []
    for s in range(0, len(preds), 500):
        for out in (monitor.on_predictions(preds[s : s + 500]), monitor.on_labels(labels[s : s + 500])):
            alerts += out.alerts
            metrics += out.metrics
    if drain:
        out = monitor.drain()
        alerts, metrics = alerts + out.alerts, metrics + out.metrics
    return alerts, metrics


def monitor(segments: list[str], settings: MonitorSettings = SETTINGS) -> ModelMonitor:
    return ModelMonitor("m", settings, ModelSpec.model_validate({"features": FEATURES, "segments": segments}))


def test_a_performance_drop_in_one_segment_is_alerted_naming_it() -> None:
    """channel=web (a fifth of the traffic) loses a third of its accuracy at prediction 8,000: a
    labelled alert names channel=web within 1,500 predictions (~300 of web's), before any whole-traffic
    alert after the change, and no labelled alert names another channel."""
    alerts, _ = run(monitor(["channel", "region"]), *make_stream(12_000, 0, flip_web=0.4, change=8000))
    labelled = [a for a in alerts if a.type in ("concept_drift", "performance")]
    web = [a for a in labelled if a.segment == {"channel": "web"}]
    assert web, [(a.type, a.segment) for a in labelled]
    first = min(a.detected_at_index for a in web)
    assert 8000 <= first <= 9500
    whole = [a.detected_at_index for a in labelled if a.segment is None and a.detected_at_index >= 8000]
    assert not whole or min(whole) > first
    assert not [a for a in labelled if a.segment is not None and a.segment.get("channel", "web") != "web"]
    assert all(a.message.startswith("segment channel=web: ") for a in web)
    ids = [a.alert_id for a in alerts]
    assert len(set(ids)) == len(ids)  # a slice's alert never shares an id with the whole traffic's


@pytest.mark.parametrize("segments", [["channel"], ["channel", "region"]])
def test_levels_share_the_model_budget(segments: list[str]) -> None:
    """The whole traffic and each segment column are levels that split the model's budget: a slice's
    rate applies to its share of the traffic, so a level's slices together spend one level's share."""
    budget = 0.6
    whole = level_settings(MonitorSettings(false_alarms_per_100k=budget), len(segments))
    per_level = whole.false_alarms_per_100k
    assert per_level is not None and per_level * (1 + len(segments)) == pytest.approx(budget)
    mon = monitor(segments, MonitorSettings(false_alarms_per_100k=budget, reference_size=100))
    preds, labels = make_stream(300, 1)
    run(mon, preds, labels)
    assert mon.versions["1"].features.drift.false_alarms_per_100k == pytest.approx(per_level)
    assert mon.segments is not None
    slices = mon.segments["1"].slices
    assert {v for c, v in slices if c == "channel"} == set(CHANNELS)
    assert all(vm.features.drift.false_alarms_per_100k == pytest.approx(per_level) for vm in slices.values())
    default = level_settings(MonitorSettings(), 1).false_alarms_per_100k
    assert default == pytest.approx(DEFAULT_FALSE_ALARMS_PER_100K / 2)


def test_no_drift_false_alarms_stay_within_the_model_budget() -> None:
    """Null streams (no drift anywhere), two segment columns (5 slices), a generous budget of 50 per
    100k predictions: the data-drift alerts of the whole traffic and all slices together stay within
    it. (Each level keeping the full budget would be allowed three times as many.)"""
    budget, n, runs = 50.0, 20_000, 3
    settings = SETTINGS.model_copy(update={"false_alarms_per_100k": budget})
    count = 0
    for seed in range(runs):
        alerts, _ = run(monitor(["channel", "region"], settings), *make_stream(n, 100 + seed))
        count += sum(a.type in DRIFT for a in alerts)
    assert count <= budget * n * runs / 100_000, count


def test_slice_metrics_carry_their_segment_and_leave_join_health_to_the_whole() -> None:
    _, metrics = run(monitor(["channel"]), *make_stream(3000, 2))
    by_segment = {(m.name, None if m.segment is None else m.segment["channel"]) for m in metrics}
    assert {("accuracy", None), ("accuracy", "web"), ("accuracy", "app"), ("accuracy", "store")} <= by_segment
    assert ("label_coverage", None) in by_segment
    assert not [m for m in metrics if m.segment is not None and m.name == "label_coverage"]
    web = [m for m in metrics if m.segment == {"channel": "web"} and m.name == "accuracy"]
    assert web[-1].window.n == SETTINGS.performance_window


def test_values_beyond_the_bound_are_pooled_whatever_the_batches() -> None:
    """The first ``max_values`` values in arrival order are tracked, the rest pooled as 'other', the
    same for any batch boundaries; a missing value is a value of its own."""
    values = np.array(["b", "a", None, "c", "a", "d", "b"], dtype=object)
    whole = SegmentColumn("plan", 3)
    names, codes = whole.codes(values)
    assert [names[c] for c in codes] == ["b", "a", "null", OTHER, "a", OTHER, "b"]
    split = SegmentColumn("plan", 3)
    parts = [split.codes(values[a:b]) for a, b in ((0, 2), (2, 5), (5, 7))]
    assert [n[c] for n, cs in parts for c in cs] == [names[c] for c in codes]
    assert list(split.tracked) == ["b", "a", "null"]
    assert split.codes(np.array(["e"], dtype=object), admit=False)[0] == [OTHER]


def test_many_values_are_bounded_slices() -> None:
    """A stream inventing a new channel per prediction holds at most max_segment_values + 1 slices."""
    features = {"x0": "numeric", "channel": "ignore"}
    spec = ModelSpec.model_validate({"features": features, "segments": ["channel"], "max_segment_values": 4})
    mon = ModelMonitor("m", MonitorSettings(reference_size=100), spec)
    preds = [
        Prediction(
            prediction_id=str(i),
            model="m",
            model_version="1",
            event_time=float(i),
            features={"x0": float(i % 7), "channel": f"c{i}"},
            prediction=1,
            score=0.5,
        )
        for i in range(400)
    ]
    mon.on_predictions(preds)
    assert mon.segments is not None
    assert sorted(v for _, v in mon.segments["1"].slices) == ["c0", "c1", "c2", "c3", OTHER]


def test_a_monitor_with_segments_resumes_from_a_pickle() -> None:
    """Snapshots pickle the monitor: a restored one raises exactly what the uninterrupted one does."""
    preds, labels = make_stream(10_000, 0, flip_web=0.4, change=6000)
    expected, _ = run(monitor(["channel"]), preds, labels)
    first = monitor(["channel"])
    before, _ = run(first, preds[:5000], labels[:5000], drain=False)
    after, _ = run(pickle.loads(pickle.dumps(first)), preds[5000:], labels[5000:])
    assert [a.alert_id for a in before + after] == [a.alert_id for a in expected]
    assert any(a.segment == {"channel": "web"} for a in after)


def _alert(alert_id: str, segment: dict[str, str] | None, at: int) -> Alert:
    w = Window(start_index=at - 100, end_index=at, start_time=float(at - 100), end_time=float(at), n=100)
    return Alert(
        alert_id=alert_id,
        type="performance",
        model="m",
        model_version="1",
        feature=None,
        statistic="rolling_accuracy",
        value=0.6,
        threshold=0.7,
        window=w,
        detected_at_index=at,
        detected_at_time=float(at),
        severity="critical",
        segment=segment,
        message="segment channel=web: rolling accuracy 0.600 below 0.700" if segment else "",
    )


def _accuracy(value: float, end: int, segment: dict[str, str] | None) -> Metric:
    w = Window(start_index=end - 100, end_index=end, start_time=float(end - 100), end_time=float(end), n=100)
    return Metric(model="m", model_version="1", name="accuracy", value=value, window=w, segment=segment)


def test_a_segment_alert_is_an_incident_of_its_own_resolved_by_its_own_metrics() -> None:
    """The whole traffic's and channel=web's performance alerts of one version are two incidents; web's
    recovered accuracy resolves web's incident only, and never counts as the whole traffic's health."""
    book = IncidentBook(RoutingSettings(resolve_after=2))
    web = {"channel": "web"}
    (opened,) = book.on_alert(_alert("w1", web, 1000))
    (whole,) = book.on_alert(_alert("a1", None, 1000))
    assert opened.fingerprint == "m|1|performance|channel=web" and whole.fingerprint == "m|1|performance"
    assert opened.incident_id != whole.incident_id
    assert "[segment: channel=web]" in opened.summary and "channel=web" in opened.alerts[0].message
    assert book.on_alert(_alert("w2", web, 1100)) == []  # joins its own: nothing new to say
    assert book.on_metric(_accuracy(0.9, 1200, web)) == []
    (resolved,) = book.on_metric(_accuracy(0.9, 1300, web))
    assert (resolved.incident_id, resolved.status) == (opened.incident_id, "resolved")
    assert resolved.alert_ids == ["w1", "w2"]
    assert [book.on_metric(_accuracy(0.55, end, None)) for end in (1200, 1300, 1400)] == [[], [], []]
    assert [i.incident_id for i in book.on_metric(_accuracy(0.9, 1500, web))] == []  # already resolved


def test_a_features_own_budget_reaches_its_slices_at_the_levels_share() -> None:
    """A feature declared with its own budget keeps it, scaled to a level's share, in every slice."""
    features = {**FEATURES, "x1": {"type": "numeric", "false_alarms_per_100k": 0.02}}
    spec = ModelSpec.model_validate({"features": features, "segments": ["channel"]})
    mon = ModelMonitor("m", MonitorSettings(false_alarms_per_100k=0.2, reference_size=100), spec)
    run(mon, *make_stream(300, 3))
    assert mon.versions["1"].features.drift.budgets == {"x1": pytest.approx(0.01)}
    assert mon.segments is not None and mon.segments["1"].slices
    for vm in mon.segments["1"].slices.values():
        assert vm.features.drift.budgets == {"x1": pytest.approx(0.01)}
