"""Promotion needs evidence: a challenger that wins a small holdout by a hair is not promoted, a clear
win is, and the outcome says the numbers."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from detectors.tasks import get_task
from driftline.config import RetrainSettings
from driftline.contracts import Prediction, Scored
from retrain_worker.evidence import paired_evidence
from retrain_worker.training import fit_and_validate


class Flipper:
    """Predicts the true label (``i % 2``, or ``i`` for regression) except on ``wrong`` rows."""

    def __init__(self, wrong: set[int], regression: bool = False, error: float = 1.0) -> None:
        self.wrong, self.regression, self.error = wrong, regression, error

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        i = X["i"].to_numpy().astype(int)
        if self.regression:
            return i + np.where(np.isin(i, list(self.wrong)), self.error, 0.0)
        return np.where(np.isin(i, list(self.wrong)), 1 - i % 2, i % 2)


def rows(n: int, regression: bool = False) -> list[Scored]:
    out = []
    for i in range(n):
        p = Prediction(
            prediction_id=f"p{i}",
            model="m",
            model_version="1",
            event_time=float(i),
            features={"i": float(i)},
            prediction=0,
        )
        out.append(Scored(prediction=p, label=float(i) if regression else i % 2, label_time=i + 1.0, index=i))
    return out


def decide(n: int, champion_wrong: set[int], challenger_wrong: set[int], task: str = "binary") -> Any:
    regression = task == "regression"
    challenger = Flipper(challenger_wrong, regression)
    settings = RetrainSettings(holdout_fraction=0.3, min_improvement=0.01)
    data, champion = rows(n, regression), Flipper(champion_wrong, regression)
    return fit_and_validate(champion, data, settings, get_task(task), lambda *_: challenger)


def test_a_marginal_win_on_a_tiny_holdout_is_not_promoted() -> None:
    # 30 held-out rows (70..99): champion wrong on 3, challenger on 2 -- +3.3 points, well above
    # min_improvement, but one discordant pair decides nothing
    fit = decide(100, {80, 85, 90}, {80, 85})
    assert fit.metrics["n_validation"] == 30
    assert fit.metrics["challenger_accuracy"] - fit.metrics["champion_accuracy"] == pytest.approx(1 / 30)
    assert not fit.wins
    assert fit.metrics["accuracy_difference_ci_low"] <= 0
    assert fit.reason.startswith("challenger did not beat champion with confidence: challenger 0.933 vs")


def test_a_clear_win_is_promoted_and_the_reason_states_the_numbers() -> None:
    held = range(700, 1000)
    fit = decide(1000, {i for i in held if i % 3 == 0}, {i for i in held if i % 25 == 0})
    assert fit.wins
    m = fit.metrics
    assert m["accuracy_difference_ci_low"] > 0.2
    assert m["challenger_accuracy_ci_low"] < m["challenger_accuracy"] < m["challenger_accuracy_ci_high"]
    assert m["champion_accuracy_ci_low"] < m["champion_accuracy"] < m["champion_accuracy_ci_high"]
    diff = m["accuracy_difference"]
    assert fit.reason == (
        f"challenger beat champion: challenger {m['challenger_accuracy']:.3f} vs champion "
        f"{m['champion_accuracy']:.3f} accuracy on 300 held-out, difference {diff:+.3f}, "
        f"95% lower bound {m['accuracy_difference_ci_low']:+.3f}"
    )


def test_a_win_within_the_margin_is_not_promoted_even_when_certain() -> None:
    settings = RetrainSettings(holdout_fraction=0.5, min_improvement=0.2)
    held = range(1000, 2000)
    champion, challenger = Flipper({i for i in held if i % 10 == 0}), Flipper(set())
    fit = fit_and_validate(champion, rows(2000), settings, get_task("binary"), lambda *_: challenger)
    assert fit.metrics["accuracy_difference_ci_low"] > 0 and not fit.wins
    assert "by min_improvement 0.2" in fit.reason


def test_regression_uses_a_seeded_paired_bootstrap_of_the_mae() -> None:
    held = list(range(700, 1000))
    clear = decide(1000, set(held[::2]), set(held[::10]), task="regression")
    assert clear.wins and clear.metrics["mae_difference_ci_low"] > 0
    assert clear.metrics["challenger_mae"] < clear.metrics["champion_mae"]
    marginal = decide(100, {80, 85, 90}, {80, 85}, task="regression")
    assert not marginal.wins
    again = decide(1000, set(held[::2]), set(held[::10]), task="regression")
    assert again.metrics == clear.metrics  # seeded: the same data gives the same bounds


def test_confidence_is_validated_and_no_discordant_pair_is_no_evidence() -> None:
    y = np.array([0, 1] * 10)
    same = paired_evidence(get_task("binary"), y, champion=y, challenger=y)
    assert same.difference == 0 and not same.clears(0.0)
    with pytest.raises(ValueError, match="confidence"):
        paired_evidence(get_task("binary"), y, champion=y, challenger=y, confidence=1.0)


def test_the_worker_records_the_evidence_and_says_it(make_worker, make_request, fill_scored) -> None:
    fill_scored(1, 1000, 200)  # after the concept change: a refit wins by far
    worker = make_worker()
    assert worker.submit(make_request("a1", t=150.0)) is None
    [out] = worker.step()
    assert out.status == "promoted"
    assert out.reason.startswith("challenger beat champion: challenger 0.")
    assert "95% lower bound +" in out.reason
    for key in ("accuracy_difference_ci_low", "challenger_accuracy_ci_low", "champion_accuracy_ci_high"):
        assert key in out.metrics
    assert worker.registry.get("churn", out.version or "").metrics == out.metrics


def test_promotion_and_rollback_keys_of_the_spec_reach_the_worker_settings() -> None:
    from driftline.errors import ConfigError
    from driftline.spec import ModelSpec
    from retrain_worker.recipe import settings_for

    spec = ModelSpec(
        features={"x": "numeric"},
        retrain={"promotion": {"confidence": 0.99, "shadow_labelled": 300}, "rollback": {"min_labelled": 50}},
    )
    s = settings_for(RetrainSettings(), spec.retrain)
    assert (s.confidence, s.shadow_labelled, s.rollback, s.rollback_min_labelled) == (0.99, 300, True, 50)
    with pytest.raises(ConfigError, match="retrain.promotion.confidence"):
        ModelSpec(features={"x": "numeric"}, retrain={"promotion": {"confidence": 1.5}})
