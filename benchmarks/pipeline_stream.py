"""The benchmark's input: a seeded prediction/label stream with drift, for `driftline bench pipeline`.

Each prediction carries ``features`` features (a quarter of them categorical, at least one), its
score and class; from ``drift_at`` of the stream on, the first numeric feature shifts by 1.5 standard
deviations and the scores rise, so data-drift and prediction-drift alerts are produced and the alert
path is timed. The label of prediction ``i`` follows prediction ``i + LAG`` (its event time a little
before that one's, so the join merges it as soon as that prediction is read); the last ``LAG``
predictions have no label. Every label is therefore scored without waiting for the join's idle
drain: a run has processed everything when it has scored exactly :attr:`Stream.labels` events.

Models take turns (``m0``, ``m1``, ...); records are keyed by model, as the processor requires.

>>> s = make_stream(1000, features=8, models=2, seed=1)
>>> s.predictions, s.labels, len(s.events), s.events[0][:2]
(1000, 800, 1800, (0, b'm0'))
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field

import msgspec
import numpy as np

LAG = 200  # a prediction's label follows this many predictions later (a multiple of any model count used)
RATE = 100.0  # predictions per second of event time
PREDICTION, LABEL = 0, 1

_encode = msgspec.json.Encoder().encode


@dataclass
class Stream:
    """``events``: (kind, key, value bytes, event time) in stream order."""

    events: list[tuple[int, bytes, bytes, float]] = field(default_factory=list)
    predictions: int = 0
    labels: int = 0
    features: int = 8
    models: int = 1


def _names(features: int) -> tuple[list[str], list[str]]:
    n_cat = max(1, features // 4)
    return [f"x{k}" for k in range(features - n_cat)], [f"c{k}" for k in range(n_cat)]


def chunks(
    n: int,
    *,
    features: int = 8,
    models: int = 1,
    seed: int = 0,
    drift_at: float = 0.5,
    epoch: float | None = None,
    chunk: int = 5000,
) -> Iterator[Stream]:
    """The stream ``chunk`` predictions (and the labels due by then) at a time, so a long run never
    holds its input in memory. Event times run at :data:`RATE`/s and end an hour before now (or start
    at ``epoch``): a broker refuses record timestamps over an hour ahead of its clock
    (``log.message.timestamp.after.max.ms``), which a long stream starting now would reach."""
    if LAG % models:
        raise ValueError(f"models must divide {LAG}, got {models}")
    rng = np.random.default_rng(seed)
    num, cat = _names(features)
    start = time.time() - 3600 - n / RATE if epoch is None else epoch
    keys = [f"m{j}".encode() for j in range(models)]
    levels = ["a", "b", "c", "d"]
    drift = int(n * drift_at)
    pending: deque[tuple[bytes, bytes, float]] = deque()  # labels not yet due, in prediction order
    for a in range(0, n, chunk):
        size = min(chunk, n - a)
        x = rng.normal(size=(size, len(num)))
        c = rng.integers(0, 4, size=(size, len(cat)))
        u = rng.random(size)
        idx = np.arange(a, a + size)
        x[idx >= drift, 0] += 1.5
        score = np.clip(u + np.where(idx >= drift, 0.2, 0.0), 0.0, 1.0)
        truth = rng.random(size) < score
        out = Stream(features=features, models=models)
        for k in range(size):
            i = a + k
            t = start + i / RATE
            feats: dict[str, float | str] = dict(zip(num, x[k].tolist(), strict=True))
            feats.update({name: levels[v] for name, v in zip(cat, c[k].tolist(), strict=True)})
            key = keys[i % models]
            model = key.decode()
            pred = {
                "prediction_id": f"p{i}",
                "model": model,
                "model_version": "1",
                "event_time": t,
                "features": feats,
                "prediction": int(score[k] > 0.5),
                "score": float(score[k]),
            }
            out.events.append((PREDICTION, key, _encode(pred), t))
            out.predictions += 1
            lab = {"prediction_id": f"p{i}", "model": model, "event_time": t + (LAG - 0.5) / RATE}
            lab["label"] = int(truth[k])
            pending.append((key, _encode(lab), float(lab["event_time"])))  # type: ignore[arg-type]
            if i >= LAG:
                key_l, value_l, t_l = pending.popleft()
                out.events.append((LABEL, key_l, value_l, t_l))
                out.labels += 1
        yield out


def make_stream(n: int, **kwargs: object) -> Stream:
    """The whole stream at once (:func:`chunks`), for runs small enough to hold."""
    whole = Stream()
    for part in chunks(n, **kwargs):  # type: ignore[arg-type]
        whole.events += part.events
        whole.predictions += part.predictions
        whole.labels += part.labels
        whole.features, whole.models = part.features, part.models
    return whole
