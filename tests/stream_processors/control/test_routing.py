"""Alert routing: dedup, cooldown, retrain trigger."""

from __future__ import annotations

import pytest
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


def test_a_replayed_alert_gets_its_first_decision_and_a_resent_one_is_a_duplicate() -> None:
    r = AlertRouter(RoutingSettings(cooldown_s=60))
    assert r.route(alert("a1", t=100), at=(0, 5)).deliver
    assert not r.route(alert("a2", t=130), at=(0, 6)).deliver  # cooldown
    again = r.route(alert("a1", t=100), at=(0, 5))  # read again from offset 5 after a restart
    assert again.replayed and again.deliver and again.retrain is not None and again.retrain.request_id == "a1"
    cooled = r.route(alert("a2", t=130), at=(0, 6))
    assert cooled.replayed and not cooled.deliver and cooled.retrain is None
    assert r.route(alert("a1", t=100), at=(0, 9)).reason == "duplicate alert id"  # sent twice: 5 and 9
    assert r.route(alert("a1", t=100)).reason == "duplicate alert id"  # read from nowhere


def test_an_entry_remembers_its_newest_ids_and_an_older_one_is_still_held_back() -> None:
    r = AlertRouter(RoutingSettings(cooldown_s=0), ids_per_key=3)
    for i in range(5):
        assert r.route(alert(f"a{i}", t=100 + i), at=(0, i)).deliver
    (entry,) = r.state.values()
    assert list(entry["ids"]) == ["a2", "a3", "a4"] and entry["fired_id"] == "a4"
    assert not r.route(alert("a0", t=100), at=(0, 9)).deliver  # forgotten, but older than the last firing
    assert r.route(alert("a4", t=104), at=(0, 9)).reason == "duplicate alert id"
    with pytest.raises(ValueError, match="ids_per_key"):
        AlertRouter(RoutingSettings(), ids_per_key=0)


def test_a_segment_has_its_own_cooldown() -> None:
    """A slice's alert is not held back by the whole traffic's alert of the same kind, nor by another
    slice's; a second alert of the same slice is."""
    import msgspec

    r = AlertRouter(RoutingSettings(cooldown_s=60))
    assert r.route(alert("all", t=100)).deliver
    web = msgspec.structs.replace(alert("web1", t=110), segment={"channel": "web"})
    shop = msgspec.structs.replace(alert("shop1", t=111), segment={"channel": "shop"})
    assert r.route(web).deliver and r.route(shop).deliver
    again = msgspec.structs.replace(alert("web2", t=120), segment={"channel": "web"})
    assert r.route(again).reason.startswith("cooldown")
