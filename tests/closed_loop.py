"""What the closed loop must show, in embedded and in Kafka mode (shared by both test tiers)."""

from __future__ import annotations

SHIFTED = {"income", "region"}  # what the simulator's default scenario moves


def check_closed_loop(report: dict, *, shift_at: int, concept_at: int, window: int = 1000) -> None:
    """The outcomes the closed loop must show, in either mode."""
    alerts = report["alerts"]
    assert report["false_alarms_before_drift"] == 0
    assert all(a["detected_at"] >= shift_at for a in alerts), "no alert before the first injected drift"
    data = [a for a in alerts if a["type"] == "data_drift"]
    assert data and {a["feature"] for a in data} <= SHIFTED, data
    for a in data:  # found after the shift started, within two windows
        assert a["drift_started_at"] == shift_at and 0 <= a["delay"] < 2 * window
    errors = [a for a in alerts if a["type"] in ("concept_drift", "performance")]
    assert errors and all(concept_at <= a["detected_at"] < concept_at + window for a in errors), errors
    assert len(report["model_versions"]) >= 2, "a new model version was published"
    assert report["accuracy_before_drift"] > 0.85
    assert report["accuracy_after_drift"] < 0.6
    assert report["accuracy_after_retrain"] > report["accuracy_after_drift"] + 0.3
