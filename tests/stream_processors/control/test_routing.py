"""Alert routing: dedup, cooldown, retrain trigger."""

from __future__ import annotations

from events import alert

from driftline.config import RoutingSettings
from stream_processors.control.routing import AlertRouter


def test_router_dedups_cools_down_and_triggers_retrain_only_for_error_alerts() -> None:
    r = AlertRouter(RoutingSettings(cooldown_s=60))
    first = r.route(alert("a1", t=100))
    assert first.deliver and first.retrain is not None and first.retrain.request_id == "a1"
    assert r.route(alert("a1", t=100)).reason == "duplicate alert id"
    assert r.route(alert("a2", t=130)).reason.startswith("cooldown")
    assert r.route(alert("a3", t=170)).deliver  # cooldown over
    drift = r.route(alert("d1", t=100, kind="data_drift", feature="income"))
    assert drift.deliver and drift.retrain is None  # data drift goes to on-call, not to retraining
    assert r.route(alert("d2", t=101, kind="data_drift", feature="region")).deliver  # another feature
