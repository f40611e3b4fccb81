"""Event factories for every test tier: events, records, alerts and a small drifting stream."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from driftline.config import Topics
from driftline.contracts import Alert, Label, Prediction, Window, encode
from driftline.transport import Record

TOPICS = Topics()


@pytest.fixture
def make_prediction() -> Callable[..., Prediction]:
    def make(
        i: int = 0,
        *,
        model: str = "m",
        version: str = "1",
        t: float | None = None,
        features: dict[str, Any] | None = None,
        prediction: int = 1,
        score: float | None = 0.7,
    ) -> Prediction:
        return Prediction(
            prediction_id=f"{model}-{i}",
            model=model,
            model_version=version,
            event_time=float(i) if t is None else t,
            features={"x": float(i % 7), "c": "a"} if features is None else features,
            prediction=prediction,
            score=score,
        )

    return make


@pytest.fixture
def make_label() -> Callable[..., Label]:
    def make(i: int = 0, label: int = 1, *, model: str = "m", t: float | None = None) -> Label:
        return Label(
            prediction_id=f"{model}-{i}", model=model, event_time=float(i) if t is None else t, label=label
        )

    return make


def record(event: Prediction | Label, offset: int = -1) -> Record:
    topic = TOPICS.predictions if isinstance(event, Prediction) else TOPICS.labels
    return Record(topic=topic, value=encode(event), key=event.model.encode(), offset=offset)


@pytest.fixture
def drifting_stream() -> Callable[..., tuple[list[Record], int]]:
    """Predictions (with labels right behind them) whose feature ``x1`` shifts by ``shift`` sd at ``at``;
    ``x0`` and ``c0`` never move. Labels: the model is right 90% of the time."""

    def make(
        n: int = 8000, at: int = 5000, shift: float = 1.0, seed: int = 0, model: str = "m"
    ) -> tuple[list[Record], int]:
        rng = np.random.default_rng(seed)
        x0, x1 = rng.normal(0, 1, n), rng.normal(0, 1, n)
        x1[at:] += shift
        c0 = rng.choice(["a", "b", "c"], n, p=[0.5, 0.3, 0.2])
        score = rng.random(n)
        correct = rng.random(n) < 0.9
        out = []
        for i in range(n):
            pred = int(score[i] >= 0.5)
            p = Prediction(
                prediction_id=f"{model}-{i}",
                model=model,
                model_version="1",
                event_time=float(i),
                features={"x0": float(x0[i]), "x1": float(x1[i]), "c0": str(c0[i])},
                prediction=pred,
                score=float(score[i]),
            )
            out.append(record(p, i))
            out.append(
                record(
                    Label(
                        prediction_id=p.prediction_id,
                        model=model,
                        event_time=i + 0.5,
                        label=pred if correct[i] else 1 - pred,
                    )
                )
            )
        return out, at

    return make


def alert(
    i: str = "a1",
    *,
    t: float = 100.0,
    kind: str = "concept_drift",
    version: str = "1",
    feature: str | None = None,
    model: str = "churn",
) -> Alert:
    w = Window(start_index=0, end_index=10, start_time=t - 10, end_time=t, n=10)
    return Alert(
        alert_id=i,
        type=kind,
        model=model,
        model_version=version,
        feature=feature,  # type: ignore[arg-type]
        statistic="s",
        value=1.0,
        threshold=0.5,
        window=w,
        detected_at_index=10,
        detected_at_time=t,
    )
