"""The retraining worker: waits for data, promotes a better model once, rejects, cools down."""

from __future__ import annotations

from driftline.config import RetrainSettings, Topics
from driftline.contracts import ModelUpdate, RetrainOutcome, decode
from driftline.transport import InMemoryBus
from retrain_worker.worker import RetrainWorker

TOPICS = Topics()
SETTINGS = RetrainSettings(min_samples=800, train_window=1500, cooldown_s=50)  # as conftest's


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


def test_cooldown_outlives_a_restart(registry, bus, fill_scored, make_request) -> None:
    settings = RetrainSettings(min_samples=800, train_window=1500, cooldown_s=5000)
    fill_scored(concept=1, n=2000, start=100)  # v2 is trained and validated on events 100..2099
    first = RetrainWorker(settings, TOPICS, registry, bus, bus.sink())
    first.submit(make_request("a1", t=100.0))
    (done,) = first.step()
    assert done.status == "promoted"
    restarted = RetrainWorker(settings, TOPICS, registry, bus, bus.sink())  # knows a1 from the registry only
    out = restarted.submit(make_request("a2", t=2500.0, version="2"))  # an alert about v2, once it serves
    assert out is not None and out.reason.startswith("cooldown")
    assert [v.version for v in registry.versions("churn")] == ["1", "2"]


def test_a_second_run_over_the_same_registry_acts_on_the_champion_and_skips_the_replaced(
    registry, fill_bus, make_request
) -> None:
    """A second run (the demo again with --registry-dir reused): event times start over, so the first
    run's retrain looks seconds old -- it is another stream's past, not a reason to cool down."""
    first_run = InMemoryBus()
    fill_bus(first_run, concept=1, n=2000, start=100)
    first = RetrainWorker(SETTINGS, TOPICS, registry, first_run, first_run.sink())
    first.submit(make_request("a1", t=100.0))
    assert [o.status for o in first.step()] == ["promoted"]  # v2 is the champion now
    second_run = InMemoryBus()
    fill_bus(second_run, concept=0, n=2000, start=100)  # v2 meets the old concept: it degrades
    second = RetrainWorker(SETTINGS, TOPICS, registry, second_run, second_run.sink())
    stale = second.submit(make_request("b1", t=110.0, version="1"))
    assert stale is not None and stale.reason.startswith("stale: version 1 already replaced by 2")
    assert second.submit(make_request("b2", t=120.0, version="2")) is None  # acted on, not cooled down
    (out,) = second.step()
    assert (out.request_id, out.status, out.version) == ("b2", "promoted", "3")
    assert registry.champion("churn").version == "3"
