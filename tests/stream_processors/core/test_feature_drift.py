"""Feature drift of one version as alerts: sequential detection per feature and of the joint
distribution, rows mapped to the stream, one alert per drift until it comes back, the same alerts
however the stream is batched."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from driftline.config import MonitorSettings
from driftline.contracts import Alert, encode
from stream_processors.core.feature_drift import FeatureDriftMonitor
from stream_processors.core.schema import SCORE_COLUMN, Kind

SETTINGS = MonitorSettings(reference_size=2000, window_size=500)
KINDS: dict[str, Kind] = {f"x{i}": "numeric" for i in range(6)} | {"plan": "categorical"}
PLANS = np.array(["free", "pro", "team", "edu"], dtype=object)


class Stream:
    """Rows of six numeric features (x0, x1 correlated 0.8), a categorical plan and the score;
    arrival indices step by 2 (another version's predictions in between)."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.rows = 0

    def batch(
        self,
        n: int,
        shift: float = 0.0,
        rho: float = 0.8,
        plan_p: tuple[float, ...] = (0.5, 0.3, 0.15, 0.05),
        score_shift: float = 0.0,
    ) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
        x = self.rng.normal(0, 1, (n, 6))
        x[:, 1] = rho * x[:, 0] + np.sqrt(1 - rho**2) * x[:, 1]  # unit variance whatever rho
        x[:, 3] += shift
        x[:, 4] = np.exp(x[:, 4])  # skewed: the detector must not assume Gaussian features
        cols = {f"x{i}": x[:, i] for i in range(6)}
        cols["plan"] = self.rng.choice(PLANS, n, p=plan_p)
        cols[SCORE_COLUMN] = np.clip(self.rng.normal(0.3 + score_shift, 0.1, n), 0, 1)
        index = 2 * (self.rows + np.arange(n))
        self.rows += n
        return cols, index, index / 10.0


def run(batches: list[tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]]) -> list[Alert]:
    monitor = FeatureDriftMonitor("m", "1", KINDS, SETTINGS)
    return [a for b in batches for a in monitor.update(*b)]


def test_a_shift_is_flagged_on_its_feature_soon_with_its_change_point_and_explanation() -> None:
    s = Stream(1)
    alerts = run([s.batch(5000), s.batch(2000, shift=0.7)])
    (alert,) = alerts
    assert (alert.type, alert.feature, alert.direction, alert.statistic) == (
        "data_drift",
        "x3",
        "increase",
        "cusum_llr",
    )
    assert alert.value > alert.threshold
    # rows 5000.. are arrival indices 10000, 10002, ...: found within 150 rows, change point near the start
    assert 10000 <= alert.detected_at_index <= 10000 + 2 * 150
    assert 10000 - 2 * 50 <= alert.window.start_index <= alert.detected_at_index
    assert alert.window.n == (alert.detected_at_index - alert.window.start_index) // 2 + 1
    # explained by the KS test of the rows since the change point against the reference
    assert alert.p_value is not None and alert.p_value < 1e-3
    assert alert.effect == pytest.approx(0.7, abs=0.35) and alert.psi is not None and alert.psi > 0.05
    assert alert.reference is not None and alert.reference.n == 2000
    assert "x3: increase since" in alert.message


def test_a_drifting_feature_alerts_once_and_again_after_it_came_back() -> None:
    s = Stream(2)
    monitor = FeatureDriftMonitor("m", "1", KINDS, SETTINGS)
    monitor.update(*s.batch(3000))
    first = monitor.update(*s.batch(3000, shift=1.0))
    assert [a.feature for a in first] == ["x3"]
    assert monitor.update(*s.batch(1000)) == []  # back to normal: re-armed after a quiet window
    assert "x3" not in monitor.drift.firing
    again = monitor.update(*s.batch(1000, shift=1.0))
    assert [a.feature for a in again] == ["x3"] and again[0].alert_id != first[0].alert_id


def test_score_drift_is_prediction_drift() -> None:
    s = Stream(3)
    (alert,) = run([s.batch(2500), s.batch(1000, score_shift=0.05)])
    assert (alert.type, alert.feature, alert.direction) == ("prediction_drift", None, "increase")
    assert "prediction score" in alert.message


def test_a_category_mix_change_names_the_category() -> None:
    s = Stream(4)
    (alert,) = run([s.batch(3000), s.batch(3000, plan_p=(0.35, 0.3, 0.3, 0.05))])
    assert (alert.type, alert.feature) == ("data_drift", "plan")
    assert alert.category == "team" and alert.effect is not None and alert.effect > 0.05
    assert alert.p_value is not None and alert.p_value < 1e-3


def test_a_correlation_change_with_unchanged_marginals_is_multivariate_drift() -> None:
    s = Stream(5)
    alerts = run([s.batch(3000), s.batch(3000, rho=0.0)])
    assert [a.type for a in alerts] == ["multivariate_drift"]
    (alert,) = alerts
    assert alert.feature is None and set(alert.contributors[:2]) == {"x0", "x1"}
    assert alert.detected_at_index < 2 * (3000 + 1000)


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_no_alert_without_drift(seed: int) -> None:
    s = Stream(seed)
    assert run([s.batch(20_000) for _ in range(5)]) == []


def test_the_same_alerts_however_the_stream_is_batched() -> None:
    s = Stream(6)
    parts = [s.batch(2500), s.batch(1500, shift=0.7), s.batch(3000), s.batch(3000, rho=0.0), s.batch(2000)]
    rows = {k: np.concatenate([p[0][k] for p in parts]) for k in parts[0][0]}
    index, time = np.concatenate([p[1] for p in parts]), np.concatenate([p[2] for p in parts])

    def cut(edges: list[int]) -> list[tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]]:
        pairs = zip(edges, edges[1:], strict=False)
        return [({k: v[a:b] for k, v in rows.items()}, index[a:b], time[a:b]) for a, b in pairs]

    n = index.size
    rng = np.random.default_rng(0)
    whole = [encode(a) for a in run(cut([0, n]))]
    assert len(whole) >= 2  # the shift and the correlation change
    for edges in (
        list(range(0, n, 1)) + [n],
        list(range(0, n, 997)) + [n],
        [0, *sorted(rng.choice(n, 40)), n],
    ):
        assert [encode(a) for a in run(cut(edges))] == whole
    # and across a checkpoint
    monitor = FeatureDriftMonitor("m", "1", KINDS, SETTINGS)
    out = monitor.update(*cut([0, 3100])[0])
    monitor = pickle.loads(pickle.dumps(monitor))
    out += monitor.update(*cut([3100, n])[0])
    assert [encode(a) for a in out] == whole
