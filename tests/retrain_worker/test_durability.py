"""Nothing lost, nothing crashes: a killed worker's pending request is retrained exactly once by the
next one; a version registered but not announced is announced once; requests that can never succeed
and trainings that keep failing become dead letters and notifications while the worker goes on."""

from __future__ import annotations

from typing import Any

import pytest

from driftline.config import Topics
from driftline.contracts import DeadLetter, ModelUpdate, RetrainOutcome, decode, encode
from driftline.transport import InMemoryBus, Record
from retrain_worker.runner import RetrainRunner
from retrain_worker.training import refit_clone

TOPICS = Topics()
RETRAIN = (TOPICS.retrain, 0)


class Killed(BaseException):
    """The process dies here: nothing in the worker catches it (as nothing survives a kill -9)."""


class DyingSink:
    """Passes records on to ``sink`` until the first one for ``topic``: there the process dies."""

    def __init__(self, sink: Any, topic: str) -> None:
        self.sink, self.topic = sink, topic

    def send(self, topic: str, key: bytes | None, value: bytes, timestamp: float | None = None) -> None:
        if topic == self.topic:
            raise Killed(f"killed before sending to {topic}")
        self.sink.send(topic, key, value, timestamp)

    def flush(self, timeout: float = 10.0) -> int:
        return 0


def _send(bus: InMemoryBus, value: bytes, key: bytes | None = b"churn") -> None:
    bus.sink().send(TOPICS.retrain, key, value, 100.0)


def _updates(bus: InMemoryBus) -> list[ModelUpdate]:
    return [decode(ModelUpdate, r.value) for r in bus.log(TOPICS.models)]


def _promotions(bus: InMemoryBus) -> list[tuple[str, str]]:
    return [
        (u.version, u.triggered_by or "")
        for u in _updates(bus)
        if getattr(u, "kind", "promoted") == "promoted"
    ]


def test_a_kill_while_a_request_waits_for_data_loses_nothing(
    registry, bus, make_worker, make_request, fill_scored, log_consumer
) -> None:
    committed: dict[tuple[str, int], int] = {}
    _send(bus, encode(make_request("a1", t=100.0)))
    _send(bus, encode(make_request("a2", t=110.0)))  # decided at once: within a1's cooldown
    first = RetrainRunner(make_worker(), log_consumer(committed), retry_interval=0.0)
    assert first.run_once() == []
    assert list(first.worker.pending) == ["a1"]  # waits for labelled data
    assert committed == {RETRAIN: 0}  # not past the waiting request, though a2 after it is decided
    del first  # killed: its memory is gone, the group's committed offset and the registry stay

    fill_scored(concept=1, n=2000, start=100)
    second = RetrainRunner(make_worker(), log_consumer(committed), retry_interval=0.0)
    (out,) = second.run_once()
    assert (out.request_id, out.status, out.version) == ("a1", "promoted", "2")
    assert committed == {RETRAIN: 2}
    skipped = [o for o in second.worker.outcomes if o.request_id == "a2"]
    assert [o.status for o in skipped] == ["skipped"] and "it was skipped" in skipped[0].reason
    third = RetrainRunner(make_worker(), log_consumer(committed), retry_interval=0.0)
    assert third.run_once() == [] and third.worker.outcomes == []  # nothing left to read
    assert [v.version for v in registry.versions("churn")] == ["1", "2"]
    assert _promotions(bus) == [("2", "a1")]
    recorded = registry.outcomes("churn")
    assert {rid: o["status"] for rid, o in recorded.items()} == {"a1": "promoted", "a2": "skipped"}


def test_a_version_registered_before_a_kill_is_announced_once_after_it(
    registry, bus, make_worker, make_request, fill_scored, log_consumer
) -> None:
    committed: dict[tuple[str, int], int] = {}
    _send(bus, encode(make_request("a1", t=100.0)))
    fill_scored(concept=1, n=2000, start=100)
    first = RetrainRunner(
        make_worker(sink=DyingSink(bus.sink(), TOPICS.models)), log_consumer(committed), retry_interval=0.0
    )
    with pytest.raises(Killed):
        first.run_once()
    assert registry.champion("churn").version == "2" and _updates(bus) == []  # registered, unannounced
    assert committed == {}

    for _ in range(2):  # a restart, and one more: the version is announced exactly once
        RetrainRunner(make_worker(), log_consumer(committed), retry_interval=0.0).run_once()
    (update,) = _updates(bus)
    assert (update.version, update.previous_version, update.triggered_by) == ("2", "1", "a1")
    assert update.artifact_sha256 == registry.get("churn", "2").sha256
    assert [v.version for v in registry.versions("churn")] == ["1", "2"]
    assert registry.outcomes("churn")["a1"]["status"] == "promoted"
    assert committed == {RETRAIN: 1}


def test_a_kill_after_the_announcement_does_not_announce_twice(
    registry, bus, make_worker, make_request, fill_scored, monkeypatch
) -> None:
    fill_scored(concept=1, n=2000, start=100)
    worker = make_worker()
    worker.submit(make_request("a1", t=100.0))

    def killed(*args: object) -> bool:
        raise Killed("killed before the outcome was recorded")

    monkeypatch.setattr(registry, "record_outcome", killed)
    with pytest.raises(Killed):
        worker.step()
    monkeypatch.undo()
    assert _promotions(bus) == [("2", "a1")] and registry.outcomes("churn") == {}

    restarted = make_worker()
    assert restarted.submit(make_request("a1", t=100.0)) is None  # read again: its outcome is unknown
    (out,) = restarted.step()
    assert out.status == "promoted" and "already on the models topic" in out.reason
    assert _promotions(bus) == [("2", "a1")]  # still one
    assert registry.outcomes("churn")["a1"]["version"] == "2"


def test_requests_that_can_never_succeed_are_dead_lettered_and_notified(
    registry, bus, make_worker, make_request, fill_scored, log_consumer
) -> None:
    registry.register("draft", {"weights": []}, promote=False)  # a model with no champion
    committed: dict[tuple[str, int], int] = {}
    bad = {
        "garbage": b"{not json",
        "ghost": encode(make_request("r-ghost", model="ghost")),
        "draft": encode(make_request("r-draft", model="draft")),
        "unsafe": encode(make_request("r-unsafe", model="../etc")),
    }
    for value in bad.values():
        _send(bus, value)
    _send(bus, encode(make_request("a1", t=100.0)))
    runner = RetrainRunner(make_worker(), log_consumer(committed), retry_interval=0.0)
    assert runner.run_once() == []  # four refused at once, a1 waits; nothing raised
    fill_scored(concept=1, n=2000, start=100)
    (out,) = runner.run_once()
    assert (out.request_id, out.status) == ("a1", "promoted")
    assert committed == {RETRAIN: 5}

    dead = [decode(DeadLetter, r.value) for r in bus.log(TOPICS.dlq)]
    assert [d.original for d in dead] == list(bad.values())
    assert [d.offset for d in dead] == [0, 1, 2, 3] and {d.stage for d in dead} == {"retrain"}
    notes = [decode(RetrainOutcome, r.value) for r in bus.log(TOPICS.notifications)]
    assert [(n.request_id, n.status) for n in notes] == [
        ("", "failed"),
        ("r-ghost", "failed"),
        ("r-draft", "failed"),
        ("r-unsafe", "failed"),
    ]
    reasons = [n.reason for n in notes]
    assert "RetrainRequest" in reasons[0] and "unknown model 'ghost'" in reasons[1]
    assert "no champion" in reasons[2] and "not a safe name" in reasons[3]
    assert not (registry.root / "ghost").exists()  # nothing written for a model nobody registered


def test_a_training_that_keeps_failing_is_recorded_and_the_next_request_is_fine(
    registry, bus, make_worker, make_request, fill_scored, log_consumer
) -> None:
    calls = []

    def flaky(champion: Any, X: Any, y: Any) -> Any:
        calls.append(len(X))
        if len(calls) <= 3:
            raise ValueError("the solver diverged")
        return refit_clone(champion, X, y)

    committed: dict[tuple[str, int], int] = {}
    fill_scored(concept=1, n=2000, start=100)
    _send(bus, encode(make_request("a1", t=100.0)))
    runner = RetrainRunner(
        make_worker(trainer=flaky, max_attempts=3), log_consumer(committed), retry_interval=0.0
    )
    assert runner.run_once() == [] and runner.run_once() == []  # two failed attempts: still pending
    assert committed == {RETRAIN: 0}
    (failed,) = runner.run_once()
    assert failed.status == "failed" and failed.reason.startswith("training failed 3 times")
    assert "ValueError: the solver diverged" in failed.reason
    assert committed == {RETRAIN: 1}
    (note,) = [decode(RetrainOutcome, r.value) for r in bus.log(TOPICS.notifications)]
    assert (note.request_id, note.status) == ("a1", "failed")
    assert registry.outcomes("churn")["a1"]["status"] == "failed"
    assert [v.version for v in registry.versions("churn")] == ["1"]

    _send(bus, encode(make_request("a2", t=200.0)))  # after the cooldown
    (ok,) = runner.run_once()
    assert (ok.request_id, ok.status, ok.version) == ("a2", "promoted", "2")
    assert _promotions(bus) == [("2", "a2")] and committed == {RETRAIN: 2}


def test_a_revoked_partition_is_committed_to_its_oldest_pending_request(make_worker, make_request) -> None:
    class Source:
        def __init__(self) -> None:
            self.commits: list[dict[tuple[str, int], int]] = []

        def poll(self, max_records: int, timeout: float = 0.0) -> list[Record]:
            reqs = [("a1", 0, 7), ("a2", 1, 3), ("a3", 1, 4)]
            out = [
                Record(TOPICS.retrain, encode(make_request(r, t=100.0 + 100 * i)), partition=p, offset=o)
                for i, (r, p, o) in enumerate(reqs)
            ]
            return out if not self.commits else []

        def commit(self, offsets: Any = None) -> None:
            self.commits.append(dict(offsets))

        def close(self) -> None:
            pass

    source = Source()
    runner = RetrainRunner(make_worker(), source, retry_interval=60.0)
    runner.run_once()
    assert source.commits == [{(TOPICS.retrain, 0): 7, (TOPICS.retrain, 1): 3}]
    runner.on_revoke([1])
    assert list(runner.worker.pending) == ["a1"]  # a2, a3 are the new owner's to read again
    runner.run_once()
    assert len(source.commits) == 1  # nothing changed: nothing committed again


def test_the_first_recorded_outcome_stands(registry) -> None:
    assert registry.record_outcome("churn", "a1", {"status": "promoted", "version": "2"})
    assert not registry.record_outcome("churn", "a1", {"status": "skipped"})
    assert registry.outcomes("churn") == {"a1": {"status": "promoted", "version": "2"}}
    assert sorted(p.name for p in (registry.root / "churn").glob("*.json")) == ["index.json", "outcomes.json"]
