"""The same input gives the same outputs, byte for byte, however the two input topics are batched
and interleaved when read: in one batch, in small batches, labels read far behind their predictions
(a backlog), labels read far ahead of them, or a random interleaving -- and across a checkpoint."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from driftline.config import MonitorSettings, Topics
from driftline.contracts import Label, Prediction, encode
from driftline.transport import Record
from stream_processors.core.processor import CoreOutput, ProcessorCore

TOPICS = Topics()
SETTINGS = MonitorSettings(reference_size=1000, window_size=500, performance_window=500, metrics_every=250)
N = 9000


def record(event: Prediction | Label) -> Record:
    topic = TOPICS.predictions if isinstance(event, Prediction) else TOPICS.labels
    return Record(topic=topic, value=encode(event), key=b"m", timestamp=event.event_time)


def stream(seed: int = 3) -> tuple[list[Record], list[Record]]:
    """Each topic in its own order: predictions one second apart; labels 0.5-300 s later, so out
    of prediction order; ``x1`` shifts at 3000, the model goes from 90% right to 55% at 5000."""
    rng = np.random.default_rng(seed)
    x0, x1, score = rng.normal(0, 1, N), rng.normal(0, 1, N), rng.random(N)
    x1[3000:] += 1.0
    right = rng.random(N) < np.where(np.arange(N) < 5000, 0.9, 0.55)
    preds, labels = [], []
    for i in range(N):
        pred = int(score[i] >= 0.5)
        p = Prediction(
            prediction_id=f"m-{i}",
            model="m",
            model_version="1",
            event_time=float(i),
            features={"x0": float(x0[i]), "x1": float(x1[i])},
            prediction=pred,
            score=float(score[i]),
        )
        preds.append(record(p))
        if rng.random() < 0.95:
            t = i + float(rng.uniform(0.5, 300.0))
            y = pred if right[i] else 1 - pred
            labels.append((t, Label(prediction_id=p.prediction_id, model="m", event_time=t, label=y)))
    labels.sort(key=lambda tl: tl[0])  # the label service sends them as they come
    return preds, [record(lab) for _, lab in labels]


def run(batches: list[list[Record]], checkpoint_at: int | None = None) -> list[tuple[str, bytes]]:
    """Every output message, in order; with ``checkpoint_at``, the core is pickled and restored
    after that many batches (a restart from a checkpoint)."""
    core = ProcessorCore(SETTINGS, TOPICS)
    out = CoreOutput()
    for k, batch in enumerate(batches):
        if k == checkpoint_at:
            core = pickle.loads(pickle.dumps(core))
        out.extend(core.process(batch))
    out.extend(core.drain())
    return [(topic, value) for topic, _, value, _ in out.messages(TOPICS)]


def chunks(records: list[Record], size: int) -> list[list[Record]]:
    return [records[i : i + size] for i in range(0, len(records), size)]


def by_time(preds: list[Record], labels: list[Record]) -> list[Record]:
    """As produced: both topics in event-time order."""
    return sorted(preds + labels, key=lambda r: (r.timestamp or 0.0, r.topic != TOPICS.predictions))


def random_interleaving(preds: list[Record], labels: list[Record], seed: int) -> list[list[Record]]:
    """Each topic's order kept, runs of random length taken from either: what a consumer does."""
    rng = np.random.default_rng(seed)
    out: list[Record] = []
    i = j = 0
    while i < len(preds) or j < len(labels):
        take = int(rng.integers(1, 3000))
        if j >= len(labels) or (i < len(preds) and rng.random() < 0.5):
            out += preds[i : i + take]
            i += take
        else:
            out += labels[j : j + take]
            j += take
    sizes = rng.integers(1, 5000, 100)
    batches, at = [], 0
    for size in sizes:
        batches.append(out[at : at + int(size)])
        at += int(size)
    return [b for b in batches if b] + [out[at:]]


@pytest.fixture(scope="module")
def reference() -> list[tuple[str, bytes]]:
    preds, labels = stream()
    return run([by_time(preds, labels)])


def test_the_reference_says_something(reference) -> None:
    """The comparisons below are worth something only if the labelled stream alerts and publishes."""
    topics = [t for t, _ in reference]
    assert topics.count(TOPICS.scored) == sum(1 for t in stream()[1])  # every label joined
    assert topics.count(TOPICS.metrics) > 100
    alerts = [v for t, v in reference if t == TOPICS.alerts]
    for kind in (b"concept_drift", b"performance", b"data_drift"):
        assert any(b'"type":"' + kind + b'"' in a for a in alerts), kind


@pytest.mark.parametrize(
    "name",
    ["small batches", "labels far behind", "labels far ahead", "random 1", "random 2", "checkpointed"],
)
def test_any_batching_and_interleaving_gives_the_same_bytes(reference, name: str) -> None:
    preds, labels = stream()
    checkpoint_at = None
    if name == "small batches":
        batches = chunks(by_time(preds, labels), 37)
    elif name == "labels far behind":  # a backlog: predictions read 4000 ahead of their labels
        batches = chunks(preds[:4000], 1000) + chunks(by_time(preds[4000:], labels), 2500)
    elif name == "labels far ahead":
        batches = chunks(labels, 5000) + chunks(preds, 5000)
    elif name == "checkpointed":
        batches, checkpoint_at = random_interleaving(preds, labels, seed=9), 40
    else:
        batches = random_interleaving(preds, labels, seed=int(name[-1]))
    assert run(batches, checkpoint_at) == reference
