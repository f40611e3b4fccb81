"""The join: bounded lateness, orphan and late labels, duplicates never double-count."""

from __future__ import annotations

import pytest

from driftline.contracts import Scored
from stream_processors.core.join import LabelJoiner


def test_labels_join_in_either_order(make_prediction, make_label) -> None:
    j = LabelJoiner(lateness_s=100)
    assert j.add_labels([make_label(2, 0, t=1.5)]) == []  # label first: waits to be merged
    joined = j.add_predictions([(make_prediction(i), i) for i in range(3)])  # t = 0, 1, 2
    assert joined == [] and j.counts["orphan_labels"] == 0  # merged at 1.5, before its prediction ...
    joined = j.add_labels([make_label(0, 1, t=2.5), make_label(1, 0, t=2.6)])
    assert [(s.prediction.prediction_id, s.label, s.index) for s in joined] == [
        ("m-2", 0, 2)
    ]  # ... joined at 2
    assert [s.index for s in j.drain()] == [0, 1]
    assert j.pending == 0 and j.counts["joined"] == 3


def test_expired_prediction_makes_its_label_late(make_prediction, make_label) -> None:
    j = LabelJoiner(lateness_s=10)
    j.add_predictions([(make_prediction(0, t=0.0), 0)])
    j.add_predictions([(make_prediction(1, t=50.0), 1)])
    j.drain()  # merged: watermark 50, prediction 0 expires
    assert j.counts["expired_unlabelled"] == 1 and j.pending == 1
    assert j.add_labels([make_label(0)]) + j.drain() == []
    assert j.counts["late_labels"] == 1


def test_orphan_label_expires_and_is_counted(make_prediction, make_label) -> None:
    j = LabelJoiner(lateness_s=10)
    j.add_labels([make_label(99, t=1.0)])
    j.add_predictions([(make_prediction(0, t=100.0), 0)])
    j.drain()
    assert j.counts["orphan_labels"] == 1


def test_replayed_events_do_not_double_count(make_prediction, make_label) -> None:
    j = LabelJoiner(lateness_s=100)
    preds = [(make_prediction(i), i) for i in range(5)]
    labels = [make_label(i) for i in range(5)]
    first = j.add_predictions(preds) + j.add_labels(labels) + j.drain()
    replay = j.add_predictions(preds) + j.add_labels(labels) + j.drain()
    assert len(first) == 5 and replay == []
    assert j.counts["duplicate_predictions"] == 5 and j.counts["duplicate_labels"] == 5


def test_pending_is_bounded(make_prediction) -> None:
    j = LabelJoiner(lateness_s=1e9, max_pending=1000)
    j.add_predictions([(make_prediction(i), i) for i in range(2500)])
    assert j.waiting == 1000 and j.counts["forced"] == 1500  # no label: merged without waiting
    assert j.pending == 1000 and j.counts["evicted"] == 500


def test_closed_ids_are_forgotten_once_the_watermark_passes_them(make_prediction, make_label) -> None:
    """Memory follows event time, not the stream's length: only ids closed in the last ``lateness_s``
    of event time stay."""
    j = LabelJoiner(lateness_s=1000)
    for start in range(0, 10_000, 500):
        j.add_predictions([(make_prediction(i), i) for i in range(start, start + 500)])
        j.add_labels([make_label(i) for i in range(start, start + 500)])
    j.drain()
    assert j.counts["joined"] == 10_000
    # merged one by one (labels at their prediction's time): id i closed at watermark i, remembered
    # until the horizon (8999) passes i rounded up to a 64th of lateness_s: ids 8985.. (run 9000) stay
    assert set(j._closed) == {f"m-{i}" for i in range(8985, 10_000)}
    assert j._closed_at[0] == [9000.0, 16] and len(j._closed_at) == 65


def test_a_replay_of_a_forgotten_id_is_late_by_event_time_never_counted_twice(
    make_prediction, make_label
) -> None:
    j = LabelJoiner(lateness_s=100)

    def feed() -> list[Scored]:
        out = []
        for start in range(0, 1000, 10):
            out += j.add_predictions([(make_prediction(i), i) for i in range(start, start + 10)])
            out += j.add_labels([make_label(i) for i in range(start, start + 10)])
        return out + j.drain()

    assert len(feed()) == 1000 and j.is_new("m-0")  # forgotten: it closed long before the horizon (899)
    assert feed() == [] and j.counts["joined"] == 1000 and j.pending == 0 and not j._orphans
    # remembered ids (closed at 899 or later: 899-999) are duplicates, forgotten ones late by event time
    assert j.counts["duplicate_predictions"] == 101 and j.counts["late_predictions"] == 899
    assert j.counts["duplicate_labels"] == 101 and j.counts["late_labels"] == 899


def test_a_label_for_an_expired_prediction_is_late_while_its_id_is_remembered(
    make_prediction, make_label
) -> None:
    j = LabelJoiner(lateness_s=10)
    j.add_predictions([(make_prediction(0), 0), (make_prediction(1, t=15.0), 1)])
    j.drain()  # 0 expires at once
    assert j.counts["expired_unlabelled"] == 1
    j.add_labels([make_label(0, t=16.0)])  # its own time is recent, but its prediction expired
    j.drain()
    assert j.counts["late_labels"] == 1 and j.counts["orphan_labels"] == 0


@pytest.mark.parametrize("runs", [None, [[4.0, 5]]], ids=["before event times", "before the merge"])
def test_an_older_checkpoint_restores(make_prediction, make_label, runs) -> None:
    """Checkpoints written before closed ids carried their event time, and before the two inputs
    were merged: their closed ids are still duplicates, and are forgotten once the horizon passes."""
    import pickle

    old_state = {
        "lateness_s": 10,
        "max_pending": 1000,
        "_pending": {},
        "_orphans": {},
        "_closed": {f"m-{i}": True for i in range(5)},
        "watermark": 4.0,
        "counts": {"joined": 5, "predictions": 5, "labels": 5},
    }
    if runs is not None:
        old_state["_closed_at"] = runs
    old = LabelJoiner.__new__(LabelJoiner)
    old.__setstate__(pickle.loads(pickle.dumps(old_state)))
    assert old.add_labels([make_label(3)]) + old.drain() == [] and old.counts["duplicate_labels"] == 1
    assert old.counts["late_predictions"] == 0 and not old.is_new("m-3")
    old.add_predictions([(make_prediction(100), 100)])
    old.drain()  # watermark 100: the old ids are forgotten
    assert not old._closed and old.is_new("m-3")


def test_a_checkpoint_leaves_out_the_last_calls_merge_record(make_prediction, make_label) -> None:
    """The merge record (the last call's merged predictions, for its caller) is not state: a checkpoint
    taken after a call does not carry that batch's predictions, and the restored joiner joins the rest
    exactly as the one that was never pickled."""
    import pickle

    def feed(j: LabelJoiner, lo: int, hi: int) -> list[Scored]:
        j.add_predictions([(make_prediction(i, t=float(i)), i) for i in range(lo, hi)])
        return j.add_labels([make_label(i, t=float(i) + 0.5) for i in range(lo - 2, hi - 2) if i >= 0])

    kept, restored = LabelJoiner(lateness_s=5), LabelJoiner(lateness_s=5)
    assert feed(kept, 0, 50) == feed(restored, 0, 50) and len(kept.merged) == 48
    blob = pickle.dumps(restored)
    assert len(blob) < len(pickle.dumps(restored.merged))  # smaller than the batch it would carry
    restored = pickle.loads(blob)
    assert restored.merged == restored.joins_before == restored.health == []
    assert feed(restored, 50, 100) + restored.drain() == feed(kept, 50, 100) + kept.drain()
    assert restored.counts == kept.counts and restored.counts["joined"] == 98
