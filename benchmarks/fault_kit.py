"""The fault suite's data (``benchmarks/faults.py`` and ``tests/integration/test_faults_kafka.py``).

* :func:`make_stream` -- one seeded drifting stream for two models, as the records to produce: per model,
  predictions 10 ms of event time apart (ending near now), 95% of them labelled 0.2-3 s later (so labels
  come out of prediction order), feature ``x1`` shifting by 1 sd at 40% of the stream and accuracy falling
  from 0.9 to 0.6 at 60%; plus records that must be dead-lettered (truncated JSON, an unannounced version,
  an unkeyed record, a label keyed by another model). :func:`produce` writes it.
* :func:`caught_up` -- whether a consumer group has processed the inputs to their end.
* :func:`collect` -- a run's outputs, reduced to what is compared with an uninterrupted run's.

Each model's records go to one input partition (``MODELS``): with two processors in one group over four
partitions (range assignment), each processor owns one model.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from confluent_kafka import Consumer, Producer, TopicPartition

from driftline.app.services import announce_on_kafka, collect_topic, prepare_kafka
from driftline.config import DriftlineSettings
from driftline.contracts import Alert, DeadLetter, Label, Metric, Prediction, Scored, decode, encode
from stream_processors.runners.checkpoint import CheckpointStore

__all__ = [
    "MODELS",
    "PARTITIONS",
    "Outputs",
    "Stream",
    "caught_up",
    "collect",
    "end_offsets",
    "make_stream",
    "produce",
]

MODELS = {"churn": 0, "fraud": 2}  # model -> its input partition
PARTITIONS = 4
STEP_S = 0.01  # event time between a model's predictions
_MAX_DELAY_S = 3.0


@dataclass(frozen=True)
class Stream:
    records: list[tuple[str, int, bytes | None, bytes, float]]  # (input: "p"/"l", partition, key, value, ts)
    labelled: frozenset[str]  # prediction ids whose label is in the stream: each is scored exactly once
    bad: int  # records that must be dead-lettered

    def __len__(self) -> int:
        return len(self.records)


def make_stream(events: int, seed: int, *, end: float | None = None) -> Stream:
    """About ``events`` records (predictions, labels and a few bad ones) in event-time order."""
    rng = np.random.default_rng(seed)
    n = max(3000, round(events / (len(MODELS) * 1.95)))
    end = time.time() if end is None else end
    rows: list[tuple[float, int, tuple[str, int, bytes | None, bytes, float]]] = []
    labelled: set[str] = set()
    bad = 0
    for model, part in MODELS.items():
        made, ids, n_bad = _model_events(rng, model, n, end - _MAX_DELAY_S - n * STEP_S)
        labelled |= ids
        bad += n_bad
        for kind, next_door, key, value, t in made:  # the neighbour partition gets the odd ones out
            rows.append((t, len(rows), (kind, part + next_door, key, value, t)))
    rows.sort(key=lambda r: (r[0], r[1]))
    return Stream([r[2] for r in rows], frozenset(labelled), bad)


Made = tuple[str, int, bytes | None, bytes, float]  # (input "p"/"l", partition offset 0/1, key, value, time)


def _model_events(
    rng: np.random.Generator, model: str, n: int, t0: float
) -> tuple[list[Made], set[str], int]:
    """One model's records, the ids of its labelled predictions and how many records are bad."""
    key = model.encode()
    x0, x1 = rng.normal(size=n), rng.normal(size=n)
    x1[int(0.4 * n) :] += 1.0
    c0 = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
    score = rng.random(n)
    correct = rng.random(n) < np.where(np.arange(n) < int(0.6 * n), 0.9, 0.6)
    has_label = rng.random(n) < 0.95
    delay = rng.uniform(0.2, _MAX_DELAY_S, n)
    out: list[Made] = []
    ids: set[str] = set()
    for i in range(n):
        t, pred = t0 + i * STEP_S, int(score[i] >= 0.5)
        features = {"x0": float(x0[i]), "x1": float(x1[i]), "c0": str(c0[i])}
        p = Prediction(
            prediction_id=f"{model}-{i}", model=model, model_version="1", event_time=t,
            features=features, prediction=pred, score=float(score[i]),
        )  # fmt: skip
        out.append(("p", 0, key, encode(p), t))
        if has_label[i]:
            tl = t + float(delay[i])
            lab = Label(prediction_id=p.prediction_id, model=model, event_time=tl,
                        label=pred if correct[i] else 1 - pred)  # fmt: skip
            out.append(("l", 0, key, encode(lab), tl))
            ids.add(p.prediction_id)
    bad = 0
    for i in range(500, n, 1000):  # four kinds of bad record every 1,000 predictions
        t = t0 + i * STEP_S
        odd = Prediction(
            prediction_id=f"{model}-bad-{i}", model=model, model_version="99", event_time=t,
            features={"x0": 0.0, "x1": 0.0, "c0": "a"}, prediction=1, score=0.5,
        )  # fmt: skip
        lab = Label(prediction_id=f"{model}-{i}", model=model, event_time=t, label=1)
        out += [
            ("p", 0, key, encode(odd)[:40], t),  # truncated JSON
            ("p", 0, key, encode(odd), t),  # a version nobody announced
            ("p", 1, None, encode(odd), t),  # unkeyed
            ("l", 1, b"someone-else", encode(lab), t),  # keyed by another model
        ]
        bad += 4
    return out, ids, bad


def produce(settings: DriftlineSettings, stream: Stream) -> None:
    """Create the topics, announce version 1 of each model, then write the stream (each record to its
    model's partition, stamped with its event time)."""
    assert settings.kafka is not None
    prepare_kafka(settings)
    for model in MODELS:
        announce_on_kafka(settings, model, "1")
    topic = {"p": settings.topics.predictions, "l": settings.topics.labels}
    producer = Producer({**settings.kafka.client_config(), "linger.ms": 20, "enable.idempotence": True})
    for kind, part, key, value, ts in stream.records:
        while True:
            try:
                producer.produce(topic[kind], value, key, partition=part, timestamp=int(ts * 1000))
                break
            except BufferError:
                producer.poll(0.1)
    if producer.flush(60):
        raise RuntimeError("the input stream was not fully delivered")


def end_offsets(settings: DriftlineSettings) -> dict[tuple[str, int], int]:
    """The high watermark of every input partition."""
    assert settings.kafka is not None
    c = Consumer({**settings.kafka.client_config(), "group.id": "driftline-faults-ends"})
    try:
        return {
            (t, p): c.get_watermark_offsets(TopicPartition(t, p), timeout=10)[1]
            for t in (settings.topics.predictions, settings.topics.labels)
            for p in range(PARTITIONS)
        }
    finally:
        c.close()


def caught_up(
    settings: DriftlineSettings, group: str, state: Path, ends: Mapping[tuple[str, int], int]
) -> bool:
    """Whether ``group`` has processed every input partition up to ``ends``: its committed offsets, or
    those its checkpoints in ``state`` carry, are there (a processor restored at the end of its input
    reads nothing new and commits nothing until it stops)."""
    assert settings.kafka is not None
    c = Consumer({**settings.kafka.client_config(), "group.id": group})
    try:
        done = {
            (tp.topic, tp.partition): tp.offset
            for tp in c.committed([TopicPartition(t, p) for t, p in ends], timeout=10)
        }
    except Exception:  # the broker away for a moment (a restart scenario): not yet
        return False
    finally:
        c.close()
    for (t, p), off in _saved_offsets(settings, group, state).items():
        done[(t, p)] = max(done.get((t, p), -1), off)
    return all(done.get(tp, -1) >= end for tp, end in ends.items() if end > 0)


def _saved_offsets(settings: DriftlineSettings, group: str, state: Path) -> dict[tuple[str, int], int]:
    """The next offsets the checkpoints in ``state`` carry, read from a copy (a file the store rejects
    is moved aside: never a live processor's)."""
    key = settings.state.checkpoint_key
    out: dict[tuple[str, int], int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "state"
        shutil.copytree(state, copy)
        store = CheckpointStore(copy, group, key.get_secret_value().encode() if key else None)
        for p in range(PARTITIONS):
            saved = store.load(p)
            out.update({(t, p): off for t, off in (saved[1] if saved else {}).items()})
    return out


@dataclass(frozen=True)
class Outputs:
    scored: int
    scored_ids: frozenset[str]
    alerts: int
    alert_ids: frozenset[str]
    alert_kinds: dict[str, tuple[str, str, int]]  # id -> (model, type, detected_at_index)
    metrics: int
    metric_values: dict[tuple[Any, ...], float]  # (model, version, name, window) -> value
    metric_conflicts: int  # copies of one metric with different values (a replay that computed otherwise)
    dead_letters: int
    dead_letter_ids: frozenset[tuple[str, int, int]]  # ("predictions"/"labels", partition, offset)


def collect(settings: DriftlineSettings) -> Outputs:
    """Every output record of a run, read to the end of the topics."""
    t = settings.topics
    scored = [decode(Scored, v).prediction.prediction_id for v in collect_topic(settings, t.scored)]
    alerts = [decode(Alert, v) for v in collect_topic(settings, t.alerts)]
    values: dict[tuple[Any, ...], float] = {}
    n_metrics = conflicts = 0
    for v in collect_topic(settings, t.metrics):
        m = decode(Metric, v)
        w = m.window
        key = (m.model, m.model_version, m.name, w.start_index, w.end_index, w.start_time, w.end_time, w.n)
        n_metrics += 1
        if key in values and values[key] != m.value and not (np.isnan(values[key]) and np.isnan(m.value)):
            conflicts += 1
        values.setdefault(key, m.value)
    dead = [decode(DeadLetter, v) for v in collect_topic(settings, t.dlq)]
    inputs = {t.predictions: "predictions", t.labels: "labels"}  # the same records in another run's topics
    return Outputs(
        scored=len(scored),
        scored_ids=frozenset(scored),
        alerts=len(alerts),
        alert_ids=frozenset(a.alert_id for a in alerts),
        alert_kinds={a.alert_id: (a.model, a.type, a.detected_at_index) for a in alerts},
        metrics=n_metrics,
        metric_values=values,
        metric_conflicts=conflicts,
        dead_letters=len(dead),
        dead_letter_ids=frozenset((inputs.get(d.topic, d.topic), d.partition, d.offset) for d in dead),
    )
