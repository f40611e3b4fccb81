"""The retraining worker: waits for data, promotes a better model once, rejects, cools down."""

from __future__ import annotations

from driftline.config import Topics
from driftline.contracts import ModelUpdate, RetrainOutcome, decode

TOPICS = Topics()


def test_worker_waits_for_data_then_promotes_a_better_model_once(
    registry, bus, make_worker, fill_scored, make_request
) -> None:
    worker = make_worker()
    req = make_request("a1", t=100.0)
    assert worker.submit(req) is None
    fill_scored(concept=1, n=500, start=100)
    assert worker.step() == []  # 500 < min_samples: keeps waiting
    fill_scored(concept=1, n=1500, start=600)
    (out,) = worker.step()
    assert out.status == "promoted" and out.version == "2"
    assert out.metrics["challenger_accuracy"] > out.metrics["champion_accuracy"] + 0.3
    (update,) = [decode(ModelUpdate, r.value) for r in bus.log(TOPICS.models)]
    assert (update.version, update.previous_version, update.triggered_by) == ("2", "1", "a1")
    assert update.trained_on is not None and update.trained_on.start_time >= 100.0  # only post-drift data
    assert registry.champion("churn").version == "2"
    # the same alert again (a replay): no second retrain
    again = worker.submit(req)
    assert again is not None and again.status == "skipped" and "idempotent" in again.reason
    # an alert about the replaced version is stale
    stale = worker.submit(make_request("a9", t=500.0))
    assert stale is not None and stale.reason.startswith("stale")


def test_worker_rejects_a_challenger_that_is_not_better(
    registry, bus, make_worker, fill_scored, make_request
) -> None:
    worker = make_worker()
    fill_scored(concept=0, n=2000, start=100)  # no real change: the champion is as good
    worker.submit(make_request("a1", t=100.0))
    (out,) = worker.step()
    assert out.status == "rejected"
    assert registry.champion("churn").version == "1"
    assert registry.get("churn", "2").stage == "rejected"  # recorded, not promoted
    assert bus.log(TOPICS.models) == []
    (told,) = [decode(RetrainOutcome, r.value) for r in bus.log(TOPICS.notifications)]  # on-call hears of it
    assert (told.status, told.version, told.request_id) == ("rejected", "2", out.request_id)


def test_worker_cooldown(make_worker, make_request) -> None:
    worker = make_worker()
    worker.submit(make_request("a1", t=100.0))
    out = worker.submit(make_request("a2", t=120.0))
    assert out is not None and out.reason.startswith("cooldown")


def test_cooldown_outlives_a_restart(registry, bus, make_worker, fill_scored, make_request) -> None:
    fill_scored(concept=1, n=2000, start=100)
    first = make_worker()
    first.submit(make_request("a1", t=100.0))
    (done,) = first.step()
    assert done.status == "promoted"
    restarted = make_worker()  # knows of a1 only from the registry's outcomes
    out = restarted.submit(make_request("a2", t=120.0, version="2"))
    assert out is not None and out.reason.startswith("cooldown")
    assert [v.version for v in registry.versions("churn")] == ["1", "2"]
