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


def check_incidents(report: dict, *, concept_at: int, window: int = 1000) -> None:
    """What on-call is told (issue 10): one data-drift incident naming both moved features, one
    performance incident stating the error rate before and after the concept change, a retrain
    notification, and every incident resolved once the retrained version is healthy."""
    incidents = report["incidents"]
    data = [i for i in incidents if i["kind"] == "data_drift"]
    perf = [i for i in incidents if i["kind"] == "performance"]
    assert len(data) == 1 and set(data[0]["features"]) == SHIFTED, incidents
    assert len(perf) == 1 and concept_at <= perf[0]["started_at"] < concept_at + window, incidents
    before, after = perf[0]["before"], perf[0]["after"]  # error rates; accuracy ~0.91 -> ~0.28
    accuracy_before, accuracy_after = report["accuracy_before_drift"], report["accuracy_after_drift"]
    assert abs((1 - before) - accuracy_before) < 0.05 and abs((1 - after) - accuracy_after) < 0.1, perf
    assert perf[0]["severity"] == "critical"
    assert all(i["status"] == "resolved" for i in incidents), incidents
    promoted = [n for n in report["retrain_notifications"] if n["status"] == "promoted"]
    assert promoted and promoted[0]["version"] == report["model_versions"][1]
