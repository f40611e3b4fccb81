"""Tasks: lookup by name, and every task's contract; binary classification's meaning of "correct"."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from detectors import UnknownNameError, available_tasks, get_task
from detectors.tasks import TASKS, BinaryClassification


def test_unknown_task_lists_the_valid_ones() -> None:
    with pytest.raises(UnknownNameError, match="unknown task 'regression'; valid names: binary") as err:
        get_task("regression")
    assert err.value.valid == available_tasks() == ["binary"]


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
