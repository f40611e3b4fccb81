"""The labelled stream's parts: the batch's alarm positions, the performance floor, and a version
monitor driven by a task other than binary classification (the Task seam: one class, no edits)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from detectors import get_detector, get_task
from driftline.config import MonitorSettings
from driftline.contracts import Alert, Prediction, Scored, Window
from stream_processors.core.concept_drift import ConceptDriftMonitor
from stream_processors.core.label_free import LabelFreeMonitor
from stream_processors.core.labelled import AlertContext, LabelledBatch
from stream_processors.core.performance_floor import PerformanceFloor
from stream_processors.core.version import VersionMonitor

CTX = AlertContext(Window(start_index=0, end_index=1, start_time=0.0, end_time=0.0, n=1), "note")


def scored(i: int, label: Any, prediction: Any = 1, score: float | None = 0.5) -> Scored:
    p = Prediction(
        prediction_id=str(i),
        model="m",
        model_version="1",
        event_time=float(i),
        features={},
        prediction=prediction,
        score=score,
    )
    return Scored(prediction=p, label=label, label_time=i + 0.5, index=i)


def test_alarms_are_placed_at_the_newest_labelled_prediction() -> None:
    batch = LabelledBatch.of([scored(4, 1), scored(2, 0, score=None), scored(9, 1), scored(6, 1)], 5)
    assert batch.at.tolist() == [5, 5, 9, 9]
    assert math.isnan(batch.scores[1]) and batch.y_pred.dtype == object
    assert len(batch) == 4 and batch.label_time(2) == 9.5


def test_floor_alerts_once_and_re_arms_within_half_the_drop() -> None:
    floor = PerformanceFloor("m", "1", metric="accuracy", drop=0.1)
    calls = []

    def ctx() -> AlertContext:
        calls.append(1)
        return CTX

    seen = [len(floor.check(v, i, float(i), ctx)) for i, v in enumerate([0.9, 0.79, 0.7, 0.84, 0.86, 0.75])]
    assert seen == [0, 1, 0, 0, 0, 1]  # 0.84 is not back (< 0.85); 0.86 re-arms
    assert len(calls) == 3  # the context is only read for the baseline's window and for an alert


def test_floor_for_a_metric_where_lower_is_better() -> None:
    floor = PerformanceFloor("m", "1", metric="mean_absolute_error", drop=0.5, higher_is_better=False)
    assert floor.check(1.0, 0, 0.0, lambda: CTX) == []
    (alert,) = floor.check(1.6, 1, 1.0, lambda: CTX)
    assert alert.statistic == "rolling_mean_absolute_error" and alert.threshold == 1.5
    assert alert.message == "rolling mean absolute error 1.600 above 1.500 (baseline 1.000); note"
    assert (alert.before, alert.after, alert.direction, alert.reference) == (1.0, 1.6, "increase", CTX.window)
    assert alert.effect is not None and abs(alert.effect - 0.6) < 1e-12
    with pytest.raises(ValueError, match="drop"):
        PerformanceFloor("m", "1", metric="accuracy", drop=0)


class RollingMAE:
    """A minimal regression metric for the test task: mean absolute error over a window."""

    def __init__(self, window: int) -> None:
        self.window, self.n = window, 0
        self.err = np.empty(0)
        self.idx = np.empty(0, dtype=np.int64)

    def update(self, y_true, y_pred, y_score, index=None, time=None) -> None:
        e = np.abs(y_true.astype(float) - y_pred.astype(float))
        self.err = np.r_[self.err, e][-self.window :]
        self.idx = np.r_[self.idx, index][-self.window :]
        self.n = self.err.size

    def revert(self, n: int = 1) -> None:
        self.err, self.idx = self.err[n:], self.idx[n:]
        self.n = self.err.size

    def get(self) -> dict[str, float]:
        return {"mae": self.headline()}

    def headline(self) -> float:
        return float(self.err.mean()) if self.n else math.nan

    def headline_se(self) -> float:
        return float(self.err.std(ddof=1) / math.sqrt(self.n)) if self.n > 1 else math.nan

    def span(self) -> tuple[int, int, float, float]:
        return (int(self.idx.min()), int(self.idx.max()), 0.0, 0.0) if self.n else (0, 0, 0.0, 0.0)

    def window_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        return np.full(self.n, np.nan), np.zeros(self.n)


class NoEstimate:
    name = "expected_mae"

    def fit(self, scores, targets) -> NoEstimate:
        return self

    def update(self, scores) -> None: ...

    def revert(self, n: int = 1) -> None: ...

    def get(self) -> float:
        return math.nan


class AbsoluteError:
    """A regression task, written against the Task protocol only."""

    name, metric, higher_is_better = "regression", "mae", False
    relative_drop = False  # the floor's drop is absolute (0.5 of MAE here)
    error_detector = ("adwin", {"delta": 0.002})

    def correct(self, y_true, y_pred) -> np.ndarray:
        return self.errors(y_true, y_pred) <= 1.0

    def errors(self, y_true, y_pred) -> np.ndarray:
        return (np.abs(np.asarray(y_true, float) - np.asarray(y_pred, float)) > 1.0).astype(float)

    def rolling_metrics(self, window: int) -> RollingMAE:
        return RollingMAE(window)

    def label_free_estimate(self, window: int) -> NoEstimate:
        return NoEstimate()

    def validation_score(self, y_true, y_pred) -> float:
        return float(np.mean(np.abs(np.asarray(y_true, float) - np.asarray(y_pred, float))))

    def serve(self, model, X) -> tuple[np.ndarray, np.ndarray]:
        y = np.asarray(model.predict(X), float)
        return y, y


def test_a_version_monitor_runs_on_any_task() -> None:
    rng = np.random.default_rng(0)
    settings = MonitorSettings(performance_window=200, metrics_every=100, performance_drop=0.5)
    monitor = VersionMonitor("m", "1", {}, settings, AbsoluteError())
    truth = rng.normal(10, 1, 3000)
    noise = np.where(np.arange(3000) < 1500, 0.5, 3.0)  # the model gets worse at 1500
    rows = [
        scored(i, float(t), float(t + rng.normal(0, s)), None)
        for i, (t, s) in enumerate(zip(truth, noise, strict=True))
    ]
    alerts, metrics = [], []
    for k in range(0, 3000, 250):
        chunk = rows[k : k + 250]

        def health(j: int, k: int = k) -> tuple[int, ...]:
            return (k + j + 1, k + j + 1, 0, 0, 0, 0)

        new_alerts, new_metrics = monitor.on_merged(chunk, np.full(250, np.nan), np.arange(250), health)
        alerts += new_alerts
        metrics += new_metrics
    kinds = {a.type: a for a in alerts}
    assert set(kinds) == {"concept_drift", "performance"}
    assert 1500 <= kinds["concept_drift"].detected_at_index < 1600
    perf = kinds["performance"]
    assert perf.statistic == "rolling_mae" and perf.value > perf.threshold
    assert "baseline mae 0.4" in perf.message
    assert {m.name for m in metrics} >= {"mae", "label_coverage"}  # NaN estimate left out


@pytest.mark.parametrize("seed", range(3))
def test_a_concept_drift_alert_states_the_error_rates_on_both_sides_of_the_change(seed: int) -> None:
    """The held-out stream of the issue: the error rate goes from ~0.32 to ~0.63 at event 3000."""
    rng = np.random.default_rng(seed)
    errors = np.r_[rng.random(3000) < 0.32, rng.random(2000) < 0.63].astype(float)
    monitor = ConceptDriftMonitor("m", "1", get_detector("adwin", delta=0.002), window=1000)
    alerts: list[Alert] = []
    for a in range(0, errors.size, 250):  # in batches, as the processor feeds it
        pos = np.arange(a, min(a + 250, errors.size))
        alerts += monitor.update(errors[pos], pos, float, lambda k: CTX, pos, pos.astype(float))
    first = alerts[0]
    assert 3000 <= first.detected_at_index < 3500
    assert first.before is not None and abs(first.before - 0.32) < 0.05
    assert first.after is not None and abs(first.after - 0.63) < 0.15  # ~100-200 errors after the change
    assert first.effect is not None and first.effect > 0.2 and first.direction == "increase"
    assert first.reference is not None and first.reference.end_index <= first.window.start_index
    assert abs(first.window.start_index - 3000) < 100  # the change point
    assert first.window.end_index == first.detected_at_index + 1
    assert first.message.startswith(f"error rate {first.before:.3f} -> {first.after:.3f}")


def test_the_label_free_estimate_alerts_below_the_floor_and_when_labels_contradict_it() -> None:
    task = get_task("binary")
    rng = np.random.default_rng(0)
    p = np.where(rng.random(1000) < 0.5, 0.95, 0.05)  # confident scores, right ~95% of the time
    y = (rng.random(1000) < p).astype(int)
    metrics = task.rolling_metrics(1000)
    metrics.update(y, (p >= 0.5).astype(int), p)
    monitor = LabelFreeMonitor(task.label_free_estimate(1000))
    monitor.calibrate(metrics)
    floor = (metrics.headline() - 0.1, 0.1)
    monitor.observe(p)
    assert monitor.check("m", "1", metrics, floor, 999, 1.0, lambda: CTX) == []  # all consistent
    monitor.observe(np.full(1000, 0.55))  # unsure scores, no labels yet: the estimate falls
    (low,) = monitor.check("m", "1", metrics, floor, 1999, 2.0, lambda: CTX)
    assert (low.type, low.statistic, low.severity) == ("performance", "expected_accuracy", "warning")
    assert low.value < floor[0] and low.message.startswith("label-free expected_accuracy")
    assert monitor.check("m", "1", metrics, floor, 2999, 3.0, lambda: CTX) == []  # once
    flipped = task.rolling_metrics(1000)  # labels arrive: the confident predictions were wrong
    flipped.update(1 - y, (p >= 0.5).astype(int), p)
    alerts = monitor.check("m", "1", flipped, floor, 3999, 4.0, lambda: CTX)
    (gap,) = [a for a in alerts if a.statistic == "estimate_gap_z"]
    assert gap.type == "concept_drift" and gap.message.startswith(
        "estimate unreliable -- likely concept drift"
    )
    assert gap.before is not None and gap.before > 0.9 and gap.after is not None and gap.after < 0.1
