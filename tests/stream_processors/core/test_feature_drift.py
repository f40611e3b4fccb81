"""Feature drift of one version as alerts: windows asked of the detector, rows mapped to the stream,
one alert per drifting feature until it comes back."""

from __future__ import annotations

import numpy as np
import pytest

from driftline.config import MonitorSettings
from stream_processors.core.feature_drift import FeatureDriftMonitor
from stream_processors.core.schema import SCORE_COLUMN

SETTINGS = MonitorSettings(reference_size=1000, window_size=500)


class Stream:
    """Rows of one numeric feature and the score; arrival indices step by 2 (other versions between)."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.rows = 0

    def batch(self, n: int, shift: float = 0.0, score_shift: float = 0.0):
        cols = {
            "x": self.rng.normal(shift, 1.0, n),
            SCORE_COLUMN: np.clip(self.rng.normal(0.3 + score_shift, 0.1, n), 0, 1),
        }
        index = 2 * (self.rows + np.arange(n))
        self.rows += n
        return cols, index, index / 10.0


def test_windows_come_from_the_detector_and_rows_map_to_arrival_indices() -> None:
    monitor = FeatureDriftMonitor("m", "1", {"x": "numeric"}, SETTINGS)
    s = Stream()
    assert monitor.update(*s.batch(1200)) == []
    assert monitor.reference is not None
    assert (monitor.reference.start_index, monitor.reference.end_index, monitor.reference.n) == (
        0,
        1999,
        1000,
    )
    (alert,) = monitor.update(*s.batch(900, shift=1.0))
    assert monitor.windows_done == monitor.drift.windows_tested == 2
    assert monitor.drift.last_window == (1500, 2000)
    assert (alert.type, alert.feature, alert.statistic) == ("data_drift", "x", "ks_p_value")
    assert alert.value == alert.p_value and alert.value <= alert.threshold
    # the window of rows 1000..1499 holds arrival indices 2000..2998
    assert (alert.window.start_index, alert.window.end_index, alert.detected_at_index) == (2000, 2999, 2998)
    assert alert.window.end_time == pytest.approx(299.8)


def test_a_drifting_feature_alerts_once_and_again_after_it_came_back() -> None:
    monitor = FeatureDriftMonitor("m", "1", {"x": "numeric"}, SETTINGS)
    s = Stream(1)
    monitor.update(*s.batch(1000))
    first = monitor.update(*s.batch(1500, shift=1.0))  # three drifting windows
    assert [a.feature for a in first] == ["x"]
    assert monitor.update(*s.batch(500, shift=0.0)) == []  # back to normal: re-armed
    assert monitor.firing == set()
    again = monitor.update(*s.batch(500, shift=1.0))
    assert [a.feature for a in again] == ["x"] and again[0].alert_id != first[0].alert_id


def test_score_drift_is_prediction_drift() -> None:
    monitor = FeatureDriftMonitor("m", "1", {"x": "numeric"}, SETTINGS)
    s = Stream(2)
    monitor.update(*s.batch(1000))
    (alert,) = monitor.update(*s.batch(500, score_shift=0.2))
    assert (alert.type, alert.feature, alert.direction) == ("prediction_drift", None, "increase")
    assert "prediction score" in alert.message
