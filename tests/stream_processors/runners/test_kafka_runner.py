"""The Kafka runner's rebalance protocol, without a broker: a fake consumer over in-memory partitioned
logs plays the group coordinator (assign / revoke / lost) and records the offsets committed."""

from __future__ import annotations

import pickle
from collections import Counter

import pytest
from events import record
from fake_group import FakeConsumer, partitioned

from driftline.config import MonitorSettings, Topics
from driftline.contracts import Scored, decode
from driftline.errors import InvalidEvent
from driftline.transport import Record
from stream_processors.core.processor import ProcessorCore
from stream_processors.runners.exceptions import DeliveryError, RunnerFailed
from stream_processors.runners.kafka import KafkaRunner

TOPICS = Topics()
P, L, S = TOPICS.predictions, TOPICS.labels, TOPICS.scored
SETTINGS = MonitorSettings(reference_size=1000, window_size=250, metrics_every=250)


def runner_for(consumer: FakeConsumer, sink, store=None, **kw) -> KafkaRunner:
    kw.setdefault("batch_size", 500)
    kw.setdefault("commit_interval", 0.0)
    core = ProcessorCore(kw.pop("settings", SETTINGS), TOPICS, **kw.pop("core", {}))
    return KafkaRunner(core, consumer, sink, store=store, **kw)


def drain(runner: KafkaRunner) -> None:
    """Read everything there is; then the inputs have ended: merge what waits (the core's drain)."""
    while runner.run_once():
        pass
    runner.drain()


def small_stream(make_prediction, make_label, n: int, model: str = "m", labels: bool = True) -> list[Record]:
    out = []
    for i in range(n):
        out.append(record(make_prediction(i, model=model)))
        if labels:
            out.append(record(make_label(i, model=model)))
    return out


def test_assign_restores_state_and_start_offsets(make_prediction, make_label, sink, store) -> None:
    logs = partitioned(small_stream(make_prediction, make_label, 30, "a"))
    first = FakeConsumer(logs)
    runner = runner_for(first, sink, store, batch_size=20)
    first.assign([0])
    runner.run_once()
    state = pickle.dumps(runner.core.models_in(0))
    runner.close()  # a clean stop checkpoints: predictions 0..9, labels 0..9
    assert first.closed and runner.core.models == {}

    logs[1] = []
    second = FakeConsumer(logs)
    restored = runner_for(second, sink, store, batch_size=20)
    assert second.assign([0, 1]) == {(P, 0): 10, (L, 0): 10}  # no checkpoint of 1: its committed offsets
    assert list(restored.core.models_in(0)) == ["a"] and restored.core.models_in(1) == {}
    assert pickle.dumps(restored.core.models_in(0)) == pickle.dumps(pickle.loads(state))


def test_revoke_checkpoints_then_releases(make_prediction, make_label, sink, store, journal) -> None:
    logs = partitioned(
        small_stream(make_prediction, make_label, 30, "a"), small_stream(make_prediction, make_label, 30, "b")
    )
    consumer = FakeConsumer(logs, journal=journal)
    runner = runner_for(consumer, sink, store, batch_size=20, commit_interval=1e9)  # no periodic commit
    consumer.assign([0, 1])
    runner.run_once()
    runner.run_once()
    assert consumer.commits == [] and set(runner.core.models) == {"a", "b"}
    journal.clear()
    consumer.revoke([1])
    assert journal == ["flush", "save 0", "save 1", "commit"]
    assert consumer.commits == [{(P, 0): 10, (L, 0): 10, (P, 1): 10, (L, 1): 10}]
    assert store.load(1)[1] == {P: 10, L: 10}  # type: ignore[index]
    assert set(runner.core.models) == {"a"}  # b released
    drain(runner)
    assert all(p == 0 for offsets in consumer.commits[1:] for _, p in offsets)


def test_lost_releases_without_checkpoint(make_prediction, make_label, sink, store, journal) -> None:
    logs = partitioned(
        small_stream(make_prediction, make_label, 30, "a"), small_stream(make_prediction, make_label, 30, "b")
    )
    consumer = FakeConsumer(logs, journal=journal)
    runner = runner_for(consumer, sink, store, batch_size=20, commit_interval=1e9)
    consumer.assign([0, 1])
    runner.run_once()
    runner.run_once()
    journal.clear()
    consumer.lose([0, 1])
    assert journal == [] and consumer.commits == [] and runner.core.models == {}
    assert store.load(0) is None and store.load(1) is None
    runner.close()
    assert consumer.commits == []  # nothing of the lost partitions is ever committed


def test_failed_deliveries_raise_and_no_offsets_are_committed(
    make_prediction, make_label, sink, store
) -> None:
    """Outputs still queued are waited for (test_at_least_once_outage.py); failed ones stop the runner."""
    consumer = FakeConsumer(partitioned(small_stream(make_prediction, make_label, 30)))
    runner = runner_for(consumer, sink, store, batch_size=20)
    consumer.assign([0])
    sink.failed = 1
    with pytest.raises(DeliveryError):
        runner.run_once()
    assert runner.failed and consumer.commits == [] and store.load(0) is None
    consumer.revoke([0])  # a failed runner never checkpoints
    runner.close()
    assert consumer.commits == [] and store.load(0) is None and runner.core.models == {}


def test_runner_failed_mid_batch_never_checkpoints(make_prediction, make_label, sink, store, journal) -> None:
    good = small_stream(make_prediction, make_label, 30)
    bad = Record(topic=P, value=b"{not json", key=b"m")
    consumer = FakeConsumer(partitioned(good[:20] + [bad] + good[20:]))
    raising = {"on_error": lambda exc, rec, stage: "raise"}
    runner = runner_for(consumer, sink, store, batch_size=15, core=raising)
    consumer.assign([0])
    runner.run_once()
    assert len(consumer.commits) == 1  # the first batch was checkpointed
    journal.clear()
    with pytest.raises(InvalidEvent):
        runner.run_once()
    with pytest.raises(RunnerFailed):
        runner.checkpoint()
    consumer.revoke([0])
    runner.close()
    assert "save 0" not in journal and len(consumer.commits) == 1 and store.load(0)[1] == {P: 8, L: 7}  # type: ignore[index]


def test_checkpoint_after_only_labels_carries_the_restored_predictions_offset(
    make_prediction, make_label, sink, store
) -> None:
    preds = [record(make_prediction(i)) for i in range(5)]
    labels = [record(make_label(i)) for i in range(5)]
    logs = partitioned(preds + labels[:2])
    first = FakeConsumer(logs)
    runner = runner_for(first, sink, store)
    first.assign([0])
    drain(runner)
    runner.close()
    assert store.load(0)[1] == {P: 5, L: 2}  # type: ignore[index]

    logs.update(partitioned(preds + labels))  # late labels arrive; no new predictions
    second = FakeConsumer(logs)
    sink.sent.clear()
    restored = runner_for(second, sink, store)
    second.assign([0])
    assert restored.run_once() == 3  # labels 2..4 only
    restored.drain()  # the inputs ended: label 4 (as late as prediction 4) is merged too
    restored.close()
    assert store.load(0)[1] == {P: 5, L: 5}  # type: ignore[index]
    assert second.commits[0] == {(P, 0): 5, (L, 0): 5}
    joined = [decode(Scored, v).prediction.prediction_id for t, _, v, _ in sink.sent if t == S]
    assert joined == ["m-2", "m-3", "m-4"]  # joined with the restored predictions


def test_restored_state_gives_the_outputs_of_an_uninterrupted_run(drifting_stream, new_sink, store) -> None:
    a, _ = drifting_stream(n=3000, at=2000, shift=1.0, seed=0, model="a")
    b, _ = drifting_stream(n=3000, at=1500, shift=1.0, seed=1, model="b")
    logs = partitioned(a, b)

    alone, whole = FakeConsumer(logs), new_sink()
    uninterrupted = runner_for(alone, whole)
    alone.assign([0, 1])
    drain(uninterrupted)

    # the same stream, with a rebalance half-way: partition 1 moves to a second member
    committed: dict[tuple[str, int], int] = {}
    one, two = FakeConsumer(logs, committed), FakeConsumer(logs, committed)
    sink1, sink2 = new_sink(), new_sink()
    first, second = runner_for(one, sink1, store), runner_for(two, sink2, store)
    one.assign([0, 1])
    for _ in range(7):
        first.run_once()
    one.revoke([0, 1])
    one.assign([0])
    two.assign([1])
    drain(first)
    drain(second)

    def by_topic(sent: list) -> Counter[str]:
        return Counter(t for t, *_ in sent)

    assert by_topic(whole.sent)[TOPICS.alerts] >= 2  # the drift of both models is found
    assert sorted(sink1.sent + sink2.sent) == sorted(whole.sent)
    assert 0 < by_topic(sink2.sent)[TOPICS.scored] < 3000  # b moved half-way through
    scored = [decode(Scored, v).prediction.prediction_id for t, _, v, _ in sink1.sent + sink2.sent if t == S]
    assert len(scored) == len(set(scored)) == 6000  # each label joined once across the rebalance
