"""Flow control between the inputs: a topic read far ahead of the other is paused in the consumer,
and resumed once the other catches up -- the join's outputs are the same as without it."""

from __future__ import annotations

from events import TOPICS, record

from driftline.config import MonitorSettings
from stream_processors.core.processor import ProcessorCore
from stream_processors.runners.flow import InputFlow


class Consumer:
    def __init__(self) -> None:
        self.paused: set[tuple[str, int]] = set()
        self.calls: list[tuple[str, list[tuple[str, int]]]] = []

    def pause(self, keys: list[tuple[str, int]]) -> None:
        self.calls.append(("pause", sorted(keys)))
        self.paused |= set(keys)

    def resume(self, keys: list[tuple[str, int]]) -> None:
        self.calls.append(("resume", sorted(keys)))
        self.paused -= set(keys)


def test_labels_read_ahead_are_paused_until_their_predictions_come(make_prediction, make_label) -> None:
    core, consumer = ProcessorCore(MonitorSettings(), TOPICS), Consumer()
    flow = InputFlow(consumer, core, high=100)
    preds = [record(make_prediction(i)) for i in range(300)]
    labels = [record(make_label(i, t=i + 0.5)) for i in range(300)]
    scored = len(core.process(preds[:10]).scored)
    flow.update()
    assert consumer.paused == set()  # predictions wait for labels: 10, under the limit
    scored += len(core.process(labels[:250]).scored)  # labels 9-249 wait for their predictions
    flow.update()
    assert consumer.paused == {(TOPICS.labels, 0)} and core.unmerged(0) == (0, 241)
    scored += len(core.process(preds[10:150]).scored)  # predictions catch up: 100 labels still wait
    flow.update()
    assert consumer.paused == {(TOPICS.labels, 0)}  # over half the limit: still paused
    scored += len(core.process(preds[150:300]).scored)
    flow.update()
    assert consumer.paused == set() and flow.pauses == 1
    scored += len(core.process(labels[250:]).scored) + len(core.drain().scored)
    assert scored == 300 and core.unmerged(0) == (0, 0)  # every label joined, none twice

    again = ProcessorCore(MonitorSettings(), TOPICS)  # the same events without flow control
    same = sum(len(again.process(batch).scored) for batch in (preds, labels)) + len(again.drain().scored)
    assert same == scored


def test_a_released_partition_is_resumed_and_forgotten(make_prediction, make_label) -> None:
    core, consumer = ProcessorCore(MonitorSettings(), TOPICS), Consumer()
    flow = InputFlow(consumer, core, high=10)
    core.process([record(make_prediction(i)) for i in range(50)])
    flow.update()
    assert consumer.paused == {(TOPICS.predictions, 0)}
    core.release(0)  # revoked, or rewound to its committed state
    flow.update()
    assert consumer.paused == set() and flow.paused == set()
