"""Tasks: lookup by name, and every task's contract; binary classification's meaning of "correct"."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import (
    accuracy_score,
    f1_score,
    mean_absolute_error,
    mean_squared_error,
    recall_score,
    roc_auc_score,
)

from detectors import UnknownNameError, available_tasks, get_task
from detectors.tasks import TASKS, BinaryClassification
from driftline.contracts import Prediction, decode, encode


def test_unknown_task_lists_the_valid_ones() -> None:
    valid = "binary, multiclass, regression"
    with pytest.raises(UnknownNameError, match=f"unknown task 'regresion'; valid names: {valid}") as err:
        get_task("regresion")
    assert err.value.valid == available_tasks() == ["binary", "multiclass", "regression"]


@pytest.mark.parametrize("name", sorted(TASKS))
class TestEveryTask:
    """What the processor, serving and the retrain worker rely on, for each task."""

    def test_correct_and_errors_agree_column_by_column(self, name: str) -> None:
        task = get_task(name)
        y = np.array([1, 0, 1, 1, 0])
        pred = np.array([1, 1, 1, 0, 0])
        right = task.correct(y, pred)
        assert right.dtype == bool and right.shape == (5,)
        errors = task.errors(y, pred)
        assert errors.dtype == float and np.array_equal(errors > 0, ~right)
        assert task.correct([], []).shape == (0,)

    def test_validation_score_is_the_headline_metric(self, name: str) -> None:
        task = get_task(name)
        rng = np.random.default_rng(0)
        y = rng.integers(0, 2, 500)
        pred = np.where(rng.random(500) < 0.8, y, 1 - y)
        metrics = task.rolling_metrics(500)
        metrics.update(y, pred, rng.random(500))
        assert task.validation_score(y, pred) == pytest.approx(metrics.headline())
        assert task.metric in metrics.get()

    def test_parts_are_fresh_and_picklable(self, name: str) -> None:
        task = get_task(name)
        assert task.rolling_metrics(10) is not task.rolling_metrics(10)
        estimate = task.label_free_estimate(10)
        assert isinstance(estimate.name, str) and np.isnan(estimate.get())
        assert pickle.loads(pickle.dumps(task)) == task


@pytest.mark.parametrize(
    ("label", "prediction", "right"),
    [
        (1, 1, True),
        ("1", 1, True),  # a label source that speaks strings
        (1.0, 1, True),
        (True, 1, True),
        ("True", True, True),
        ("yes", "yes", True),
        (0, 1, False),
        ("1.0", 1, False),  # neither equal nor the same text
        ("no", 0, False),
    ],
)
def test_binary_correct_is_equality_or_same_text(label: object, prediction: object, right: bool) -> None:
    assert BinaryClassification().correct([label], [prediction]).tolist() == [right]


def test_binary_serve_thresholds_the_positive_class_probability() -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(400, 3))
    y = (X[:, 0] + rng.normal(0, 0.5, 400) > 0).astype(int)
    model = LogisticRegression().fit(X, y)
    pred, score = get_task("binary").serve(model, X)
    assert np.array_equal(score, model.predict_proba(X)[:, 1])
    assert np.array_equal(pred, (score >= 0.5).astype(int))
    strict, _ = BinaryClassification(threshold=0.9).serve(model, X)
    assert strict.sum() < pred.sum()


def test_binary_threshold_is_validated() -> None:
    with pytest.raises(ValueError, match="threshold"):
        BinaryClassification(threshold=1.0)


# -- regression and multiclass: the statistics against scikit-learn's ------------------------------


def test_regression_metrics_match_sklearn_over_a_sliding_window() -> None:
    rng = np.random.default_rng(3)
    y = rng.normal(10, 3, 2500)
    pred = y + rng.standard_t(4, y.size)
    metrics = get_task("regression").rolling_metrics(1000)
    for a in range(0, y.size, 333):  # batches that do not line up with the window
        metrics.update(y[a : a + 333], pred[a : a + 333], None, np.arange(a, min(y.size, a + 333)))
    got = metrics.get()
    assert got["mae"] == pytest.approx(mean_absolute_error(y[-1000:], pred[-1000:]), rel=1e-9)
    assert got["rmse"] == pytest.approx(np.sqrt(mean_squared_error(y[-1000:], pred[-1000:])), rel=1e-9)
    assert metrics.span()[:2] == (1500, 2499)
    metrics.revert(400)  # the 400 oldest leave
    assert metrics.headline() == pytest.approx(mean_absolute_error(y[-600:], pred[-600:]), rel=1e-9)


def test_multiclass_metrics_match_sklearn_with_mixed_label_types() -> None:
    rng = np.random.default_rng(4)
    classes = np.array(["cat", "dog", "fox", "owl"])
    y = rng.choice(classes, 3000, p=[0.4, 0.3, 0.2, 0.1])
    pred = np.where(rng.random(y.size) < 0.7, y, rng.choice(classes, y.size))
    metrics = get_task("multiclass").rolling_metrics(1200)
    metrics.update(y, pred, rng.random(y.size))
    got = metrics.get()
    ref_y, ref_p = y[-1200:], pred[-1200:]
    assert got["accuracy"] == pytest.approx(accuracy_score(ref_y, ref_p))
    assert got["macro_f1"] == pytest.approx(f1_score(ref_y, ref_p, average="macro"), abs=1e-12)
    recalls = recall_score(ref_y, ref_p, average=None, labels=classes)
    for c, r in zip(classes, recalls, strict=True):
        assert got[f"recall_{c}"] == pytest.approx(r)
    ints = get_task("multiclass").rolling_metrics(10)  # 2, 2.0 and "2" are one class
    ints.update([2, 2.0, "2", 1], ["2", 2, 2.0, 1.0], None)
    assert ints.get()["accuracy"] == 1.0 and ints.get()["macro_f1"] == 1.0


def test_multiclass_serve_and_probability_derived_score() -> None:
    rng = np.random.default_rng(5)
    X = rng.normal(size=(600, 3))
    y = np.array(["a", "b", "c"])[np.argmax(X + rng.normal(0, 0.5, X.shape), axis=1)]
    model = LogisticRegression().fit(X, y)
    pred, score = get_task("multiclass").serve(model, X)
    assert np.array_equal(pred, model.predict(X))
    assert np.allclose(score, model.predict_proba(X).max(axis=1))
    p = Prediction(
        prediction_id="1",
        model="m",
        model_version="1",
        event_time=0.0,
        features={},
        prediction="b",
        probabilities={"a": 0.1, "b": 0.6, "c": 0.3},
    )
    assert p.score == 0.6 and decode(Prediction, encode(p)).score == 0.6


def test_regression_serve_is_predict_with_no_score() -> None:
    rng = np.random.default_rng(6)
    X = rng.normal(size=(200, 2))
    model = LinearRegression().fit(X, X @ [1.0, -2.0])
    pred, score = get_task("regression").serve(model, X)
    assert np.allclose(pred, model.predict(X)) and np.isnan(score).all()
    assert get_task("regression").validation_score(X @ [1.0, -2.0], pred) == pytest.approx(0, abs=1e-9)


def test_binary_positive_class_names_the_positive_labels_and_column() -> None:
    rng = np.random.default_rng(7)
    X = rng.normal(size=(400, 2))
    y = np.where(X[:, 0] + rng.normal(0, 0.5, 400) > 0, "bad", "good")
    model = LogisticRegression().fit(X, y)  # classes_ ["bad", "good"]: the positive class first
    task = BinaryClassification(positive_class="bad")
    pred, score = task.serve(model, X)
    assert np.allclose(score, model.predict_proba(X)[:, 0]) and np.array_equal(pred, model.predict(X))
    metrics = task.rolling_metrics(400)
    metrics.update(y, pred, score)
    assert metrics.roc_auc() == pytest.approx(roc_auc_score(y == "bad", score))
    default = BinaryClassification().rolling_metrics(400)  # "bad" is not a positive by default
    default.update(y, pred, score)
    assert np.isnan(default.roc_auc())


def test_multiclass_label_free_estimate_tracks_accuracy_from_top_probabilities() -> None:
    rng = np.random.default_rng(8)
    top = rng.uniform(0.3, 1.0, 4000)
    right = rng.random(top.size) < top**1.5  # over-confident: calibration must correct it
    task = get_task("multiclass")
    est = task.label_free_estimate(2000).fit(top[:2000], right[:2000].astype(int))
    est.update(top[2000:])
    assert est.get() == pytest.approx(right[2000:].mean(), abs=0.02)
    raw = float(top[2000:].mean())
    assert abs(raw - right[2000:].mean()) > 0.05  # the raw mean confidence would have been off


def test_the_spec_positive_class_reaches_the_processor_task() -> None:
    from driftline.config import MonitorSettings
    from driftline.spec import ModelSpec
    from stream_processors.core.model_monitor import ModelMonitor

    spec = ModelSpec(features={"x": "numeric"}, label={"positive_class": "bad"})
    assert ModelMonitor("m", MonitorSettings(), spec).task == BinaryClassification(positive_class="bad")
    default = ModelSpec(features={"x": "numeric"})  # 1: the default reading of positives
    assert ModelMonitor("m", MonitorSettings(), default).task == BinaryClassification()
    regression = ModelSpec(task="regression", features={"x": "numeric"})
    assert ModelMonitor("m", MonitorSettings(task="regression"), regression).task.name == "regression"
