"""Retraining on event time: a pending request is decided at the loop's clock (a tick), on the labelled
events before it, whenever the worker happens to run -- and serving switches at the update's event time,
whatever its batch size. Together they make a Kafka replay give the embedded loop's versions at the
embedded loop's event indices."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec
import numpy as np
import pytest

from driftline.config import Topics
from driftline.contracts import ModelUpdate, RetrainOutcome, decode, encode
from driftline.registry import LocalModelRegistry
from driftline.transport import InMemoryBus, Record
from producers.serving import ModelServer
from producers.simulator import Scenario, Simulator, World, make_model
from retrain_worker.runner import LoopTick, RetrainRunner

TOPICS = Topics()
CLOCK = f"{TOPICS.retrain}.clock"


class TwoTopics:
    """A consumer of the retrain and clock topics of an in-memory bus (one partition each)."""

    def __init__(self, bus: InMemoryBus) -> None:
        self.bus, self.position = bus, {TOPICS.retrain: 0, CLOCK: 0}
        self.committed: dict[tuple[str, int], int] = {}

    def poll(self, max_records: int, timeout: float = 0.0) -> list[Record]:
        out: list[Record] = []
        for topic in (CLOCK, TOPICS.retrain):  # a tick may be fetched before the request sent first
            records = self.bus.log(topic)[self.position[topic] :]
            self.position[topic] += len(records)
            out += records
        return out

    def commit(self, offsets: Mapping[tuple[str, int], int] | None = None) -> None:
        self.committed.update(offsets or {})

    def close(self) -> None:
        pass


def _tick(bus: InMemoryBus, t: float, requests: int = 0) -> None:
    tick = LoopTick(event_time=t, requests_to=[(TOPICS.retrain, 0, requests)] if requests else [])
    bus.sink().send(CLOCK, None, msgspec.json.encode(tick), t)


def _decide(bus: InMemoryBus, make_worker: Any, make_request: Any, fill_scored: Any, trickle: bool):
    """Request at t=100; labelled events 100..2099 (label times +1): either all there from the start or
    arriving between the ticks; ticks at 500, 900, 1300, 1700. Returns the outcomes and the updates."""
    runner = RetrainRunner(make_worker(), source := TwoTopics(bus), clock_topic=CLOCK)
    if not trickle:
        fill_scored(1, 2000, 100)
    bus.sink().send(TOPICS.retrain, b"churn", encode(make_request("a1", t=100.0)), 100.0)
    _tick(bus, 100.0, requests=1)  # read before the request: waits for it
    done: list[RetrainOutcome] = runner.run_once()
    assert runner.worker.pending, "decided at the first tick, with no labelled event before it"
    start = 100
    for t in (500, 900, 1300, 1700):
        if trickle:
            fill_scored(1, t - 1 - start, start)  # every label before t (label time = index + 1)
            start = t - 1
        assert runner.run_once() == [], "no decision between ticks: the worker waits for the clock"
        _tick(bus, float(t))
        done += runner.run_once()
    assert source.committed[(CLOCK, 0)] == 5, "every tick committed: the paced producer goes on"
    return done, [decode(ModelUpdate, r.value) for r in bus.log(TOPICS.models)]


@pytest.mark.parametrize("trickle", [False, True])
def test_a_request_is_decided_at_the_first_tick_with_enough_labels_on_the_labels_before_it(
    bus, make_worker, make_request, fill_scored, trickle
) -> None:
    done, updates = _decide(bus, make_worker, make_request, fill_scored, trickle)
    (out,) = done
    # 800 needed (SETTINGS.min_samples): 399 labelled before 500, 799 before 900, 1199 before 1300
    assert (out.status, out.version, out.trained_through_index) == ("promoted", "2", 1298)
    (update,) = [u for u in updates if u.kind == "promoted"]
    assert update.effective_from == 1300.0  # serving switches at the tick the worker decided at
    assert update.validated_on is not None and update.validated_on.end_time <= 1300.0


def test_without_a_clock_a_request_is_tried_when_enough_new_labels_arrived_not_on_a_timer(
    bus, make_worker, make_request, fill_scored
) -> None:
    labelled = [0]
    steps: list[float | None] = []
    worker = make_worker()
    step = worker.step
    worker.step = lambda now=None: steps.append(now) or step(now)  # type: ignore[method-assign]
    source = TwoTopics(bus)
    runner = RetrainRunner(worker, source, progress=lambda: labelled[0], retry_every=500, retry_interval=0.0)
    bus.sink().send(TOPICS.retrain, b"churn", encode(make_request("a1", t=100.0)), 100.0)
    runner.run_once()  # queued: tried once at once
    for n in (100, 400, 499):
        labelled[0] = n
        runner.run_once()
    assert len(steps) == 1, "no new labels worth a try: not tried again, however often it runs"
    labelled[0] = 500
    fill_scored(1, 1000, 100)
    (out,) = runner.run_once()
    assert out.status == "promoted" and len(steps) == 2


@pytest.mark.parametrize("batch", [500, 137])
def test_serving_switches_at_the_updates_event_time_whatever_the_batch(tmp_path, batch) -> None:
    sc = Scenario(n_events=3000, covariate_shift_at=1000, concept_change_at=2000, seed=3, train_size=500)
    registry = LocalModelRegistry(tmp_path / "reg")
    for seed in (0, 1):  # v1 the champion served, v2 the one the update promotes
        X, y = World(sc).sample(np.random.default_rng(seed), 500, concept=seed, shifted=False)
        v = registry.register("churn", make_model().fit(X, y), promote=seed == 0)
    sim = Simulator(sc, server := ModelServer("churn", registry))
    switch_at = 1234
    update = ModelUpdate(
        model="churn",
        version=v.version,
        previous_version="1",
        artifact_uri="",
        artifact_sha256=v.sha256,
        effective_from=sc.time_of(switch_at),
    )
    versions: list[str] = []
    while sim.index < 2000:
        if sim.index >= 1000 and not server.scheduled and server.version == "1":
            assert not server.apply(update, now=sc.time_of(sim.index))  # read early: scheduled
        versions += [p.model_version for p in sim.next_batch(batch).predictions]
    assert versions.index("2") == switch_at and set(versions[switch_at:]) == {"2"}
    assert server.history == [(switch_at, "2")]


def test_a_paced_producer_waits_for_routing_only_after_a_retraining_alert() -> None:
    """The pacer holds for the control plane only at the offsets of alerts that make retrain
    requests, and knows a partition is read once its end is met (a transaction marker's offset
    included), never by counting records."""
    from driftline.app.pacing import RetrainAlerts

    seen = RetrainAlerts(("concept_drift", "performance"))
    p0, p1 = ("alerts", 0), ("alerts", 1)
    seen.record(p0, 0, b'{"type": "data_drift", "model": "churn"}')
    seen.record(p1, 0, b"not json")
    assert not seen.to_route, "data drift and stray bytes make no retrain request: nothing to wait for"
    seen.record(p1, 1, b'{"type": "performance"}')
    seen.record(p1, 2, b'{"type": "prediction_drift"}')
    assert seen.to_route == {p1: 2}, "routed once the control plane committed past the performance alert"
    ends = {p0: 2, p1: 4}  # each partition's last record followed by a transaction marker
    assert not seen.read_to(ends)
    seen.end(p0, 2)
    seen.end(p1, 4)
    assert seen.read_to(ends)


class JoiningSource:
    """A models-topic consumer that reads nothing until its group is joined (``empty`` polls)."""

    def __init__(self, records: list[Record], empty: int) -> None:
        self.records, self.empty, self.polls = records, empty, 0

    def poll(self, max_records: int, timeout: float = 0.0) -> list[Record]:
        self.polls += 1
        if self.polls <= self.empty:
            return []
        out, self.records = self.records[:max_records], self.records[max_records:]
        return out


def test_serving_reads_the_update_decided_at_a_tick_before_its_next_prediction() -> None:
    from driftline.app.services import _Updates

    update = Record(TOPICS.models, b"v2", b"churn", partition=2, offset=5)
    updates = _Updates(JoiningSource([update], empty=3))  # type: ignore[arg-type]
    assert updates.read(None) == [], "unpaced: one look, whatever is there"
    assert updates.read({(TOPICS.models, 2): 6, (TOPICS.models, 0): 0}) == [update]
    assert updates.seen == {(TOPICS.models, 2): 6}
