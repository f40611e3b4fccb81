"""The join: bounded lateness, orphan and late labels, duplicates never double-count."""

from __future__ import annotations

from driftline.contracts import Scored
from stream_processors.core.join import LabelJoiner


def test_labels_join_in_either_order(make_prediction, make_label) -> None:
    j = LabelJoiner(lateness_s=100)
    assert j.add_labels([make_label(2, 0, t=5.0)]) == []  # label first: waits as an orphan
    joined = j.add_predictions([(make_prediction(i), i) for i in range(3)])
    assert [(s.prediction.prediction_id, s.label, s.index) for s in joined] == [("m-2", 0, 2)]
    joined = j.add_labels([make_label(0, 1), make_label(1, 0)])
    assert [s.index for s in joined] == [0, 1]
    assert j.pending == 0 and j.counts["joined"] == 3


def test_expired_prediction_makes_its_label_late(make_prediction, make_label) -> None:
    j = LabelJoiner(lateness_s=10)
    j.add_predictions([(make_prediction(0, t=0.0), 0)])
    j.add_predictions([(make_prediction(1, t=50.0), 1)])  # watermark 50: prediction 0 expires
    assert j.counts["expired_unlabelled"] == 1 and j.pending == 1
    assert j.add_labels([make_label(0)]) == []
    assert j.counts["late_labels"] == 1


def test_orphan_label_expires_and_is_counted(make_prediction, make_label) -> None:
    j = LabelJoiner(lateness_s=10)
    j.add_labels([make_label(99, t=1.0)])
    j.add_predictions([(make_prediction(0, t=100.0), 0)])
    assert j.counts["orphan_labels"] == 1


def test_replayed_events_do_not_double_count(make_prediction, make_label) -> None:
    j = LabelJoiner(lateness_s=100)
    preds = [(make_prediction(i), i) for i in range(5)]
    labels = [make_label(i) for i in range(5)]
    first = j.add_predictions(preds) + j.add_labels(labels)
    replay = j.add_predictions(preds) + j.add_labels(labels)
    assert len(first) == 5 and replay == []
    assert j.counts["duplicate_predictions"] == 5 and j.counts["duplicate_labels"] == 5


def test_pending_is_bounded(make_prediction) -> None:
    j = LabelJoiner(lateness_s=1e9, max_pending=1000)
    j.add_predictions([(make_prediction(i), i) for i in range(1500)])
    assert j.pending == 1000 and j.counts["evicted"] == 500


def test_closed_ids_are_forgotten_once_the_watermark_passes_them(make_prediction, make_label) -> None:
    """Memory follows event time, not the stream's length: only ids closed in the last ``lateness_s``
    of event time stay."""
    j = LabelJoiner(lateness_s=1000)
    for start in range(0, 10_000, 500):
        j.add_predictions([(make_prediction(i), i) for i in range(start, start + 500)])
        j.add_labels([make_label(i) for i in range(start, start + 500)])
    assert j.counts["joined"] == 10_000
    assert len(j._closed) == 1500  # closed at 8999, 9499 and 9999 (the horizon is 8999)
    assert [run for run in j._closed_at] == [[8999.0, 500], [9499.0, 500], [9999.0, 500]]


def test_a_replay_of_a_forgotten_id_is_late_by_event_time_never_counted_twice(
    make_prediction, make_label
) -> None:
    j = LabelJoiner(lateness_s=100)

    def feed() -> list[Scored]:
        out = []
        for start in range(0, 1000, 10):
            out += j.add_predictions([(make_prediction(i), i) for i in range(start, start + 10)])
            out += j.add_labels([make_label(i) for i in range(start, start + 10)])
        return out

    assert len(feed()) == 1000 and j.is_new("m-0")  # forgotten: it closed long before the horizon (899)
    assert feed() == [] and j.counts["joined"] == 1000 and j.pending == 0 and not j._orphans
    # remembered ids (closed at 899 or later: 890-999) are duplicates, forgotten ones late by event time
    assert j.counts["duplicate_predictions"] == 110 and j.counts["late_predictions"] == 890
    assert j.counts["duplicate_labels"] == 110 and j.counts["late_labels"] == 890


def test_a_label_for_an_expired_prediction_is_late_while_its_id_is_remembered(
    make_prediction, make_label
) -> None:
    j = LabelJoiner(lateness_s=10)
    j.add_predictions([(make_prediction(0), 0), (make_prediction(1, t=15.0), 1)])  # 0 expires at once
    assert j.counts["expired_unlabelled"] == 1
    j.add_labels([make_label(0, t=16.0)])  # its own time is recent, but its prediction expired
    assert j.counts["late_labels"] == 1 and j.counts["orphan_labels"] == 0


def test_a_checkpoint_from_before_event_times_restores(make_prediction, make_label) -> None:
    import pickle

    j = LabelJoiner(lateness_s=10)
    j.add_predictions([(make_prediction(i), i) for i in range(5)])
    j.add_labels([make_label(i) for i in range(5)])
    state = {k: v for k, v in j.__dict__.items() if k != "_closed_at"}
    del state["counts"]["late_predictions"]  # as an older checkpoint has them
    old = LabelJoiner.__new__(LabelJoiner)
    old.__setstate__(pickle.loads(pickle.dumps(state)))
    assert old.add_labels([make_label(3)]) == [] and old.counts["duplicate_labels"] == 1
    old.add_predictions([(make_prediction(100), 100)])  # watermark 100: the old ids are forgotten
    assert not old._closed and old.is_new("m-3")
