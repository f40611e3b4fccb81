"""A version monitor per task on seeded labelled streams: the change is alerted (concept drift or
performance) within a bounded number of labelled predictions after it, nothing before it, and the
metrics published are the task's."""

from __future__ import annotations

import numpy as np
import pytest

from detectors import get_task
from driftline.config import MonitorSettings
from driftline.contracts import Alert, Metric, Prediction, Scored
from stream_processors.core.version import VersionMonitor

CHANGE, N = 5000, 8000
CLASSES = np.array(["cat", "dog", "fox"], dtype=object)


def stream(task: str, seed: int) -> list[Scored]:
    rng = np.random.default_rng(seed)
    after = np.arange(N) >= CHANGE
    if task == "regression":  # the residuals' spread grows by half
        pred = rng.normal(20.0, 5.0, N)
        label = (pred + rng.normal(0, 1, N) * np.where(after, 1.5, 1.0)).tolist()
        prediction, score, probabilities = pred.tolist(), [None] * N, [None] * N
    else:  # accuracy 0.9 -> 0.7, confidences as before (the labels changed, not the inputs)
        top = np.clip(rng.normal(0.9, 0.05, N), 0.34, 1.0)
        right = rng.random(N) < np.where(after, 0.7, top)
        classes = CLASSES if task == "multiclass" else np.array([0, 1], dtype=object)
        y = rng.choice(classes, N)
        other = classes[(np.searchsorted(classes, y) + rng.integers(1, classes.size, N)) % classes.size]
        label, prediction = y.tolist(), np.where(right, y, other).tolist()
        if task == "binary":
            score = np.where(np.array(prediction) == 1, top, 1 - top).tolist()
            probabilities = [None] * N
        else:  # the score comes from the probabilities (the top class's)
            score = [None] * N
            probabilities = [{p: t, "_rest": 1 - t} for p, t in zip(prediction, top.tolist(), strict=True)]
    return [
        Scored(
            prediction=Prediction(
                prediction_id=str(i),
                model="m",
                model_version="1",
                event_time=float(i),
                features={},
                prediction=prediction[i],
                score=score[i],
                probabilities=probabilities[i],
            ),
            label=label[i],
            label_time=i + 0.5,
            index=i,
        )
        for i in range(N)
    ]


def run(task: str, seed: int) -> tuple[list[Alert], list[Metric]]:
    vm = VersionMonitor("m", "1", {}, MonitorSettings(task=task), get_task(task))  # type: ignore[arg-type]
    rows, alerts, metrics = stream(task, seed), [], []
    for a in range(0, N, 700):  # batches that do not line up with the metric positions
        batch = rows[a : a + 700]
        scores = np.array([s.prediction.score or np.nan for s in batch], dtype=float)
        got, published = vm.on_merged(
            batch, scores, np.arange(1, len(batch) + 1), lambda k: (k, k, 0, 0, 0, 0)
        )
        alerts += got
        metrics += published
    return alerts, metrics


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
@pytest.mark.parametrize("seed", [1, 2])
def test_the_change_is_alerted_soon_after_and_nothing_before(task: str, seed: int) -> None:
    alerts, _ = run(task, seed)
    labelled = [a for a in alerts if a.type in ("concept_drift", "performance")]
    assert labelled, f"{task}: no alert after the change"
    first = min(a.detected_at_index for a in labelled)
    assert CHANGE <= first <= CHANGE + 1500, [(a.type, a.detected_at_index) for a in labelled]


def test_regression_alerts_name_the_mae_rising_and_publish_mae_rmse_without_an_estimate() -> None:
    alerts, metrics = run("regression", 3)
    floor = [a for a in alerts if a.type == "performance"]
    assert floor and floor[0].statistic == "rolling_mae" and floor[0].direction == "increase"
    assert floor[0].after / floor[0].before > 1.2  # the spread grew by half: MAE by half
    concept = [a for a in alerts if a.type == "concept_drift"]
    assert concept and "residual_cusum" in concept[0].message
    names = {m.name for m in metrics}
    assert {"mae", "rmse"} <= names and not names & {"accuracy", "expected_accuracy", "label_free_estimate"}


def test_multiclass_publishes_macro_f1_recalls_and_the_estimate_from_probabilities() -> None:
    _, metrics = run("multiclass", 4)
    before = {m.name: m.value for m in metrics if m.window.end_index <= CHANGE}
    assert {"accuracy", "macro_f1", "recall_cat", "recall_dog", "recall_fox"} <= before.keys()
    assert before["expected_accuracy"] == pytest.approx(before["accuracy"], abs=0.05)
