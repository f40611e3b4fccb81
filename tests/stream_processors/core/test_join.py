"""The join: bounded lateness, orphan and late labels, duplicates never double-count."""

from __future__ import annotations

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
