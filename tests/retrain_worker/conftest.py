"""Fixtures of the retrain worker's tests: a registry with a champion, labelled events on an
in-memory bus, workers over both, and a consumer whose committed offsets outlive it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pytest
from events import alert

from driftline.config import RetrainSettings, Topics
from driftline.contracts import Prediction, RetrainRequest, Scored, encode
from driftline.registry import LocalModelRegistry
from driftline.transport import InMemoryBus, Record
from producers.simulator import Scenario, World, make_model
from retrain_worker.worker import RetrainWorker

TOPICS = Topics()
SC = Scenario(n_events=10_000, covariate_shift_at=2000, concept_change_at=4000, seed=5)
SETTINGS = RetrainSettings(min_samples=800, train_window=1500, cooldown_s=50)


def _fill_scored(bus: InMemoryBus, concept: int, n: int, start: int, model: str = "churn") -> None:
    """``n`` labelled events of ``model`` at times ``start`` .. ``start + n - 1`` (concept 1: after
    the change, where a refit beats the champion by far)."""
    X, y = World(SC).sample(np.random.default_rng(start), n, concept=concept, shifted=True)
    sink = bus.sink()
    for k, (row, label) in enumerate(zip(X.to_dict("records"), y, strict=True)):
        i = start + k
        p = Prediction(
            prediction_id=f"p{i}",
            model=model,
            model_version="1",
            event_time=float(i),
            features=row,
            prediction=0,
            score=0.5,
        )
        value = encode(Scored(prediction=p, label=int(label), label_time=i + 1.0, index=i))
        sink.send(TOPICS.scored, model.encode(), value, i + 1.0)


def _request(rid: str, t: float = 100.0, model: str = "churn", version: str = "1") -> RetrainRequest:
    return RetrainRequest(request_id=rid, model=model, model_version=version, alert=alert(rid, t=t))


@pytest.fixture
def fill_scored(bus: InMemoryBus) -> Callable[..., None]:
    """``fill_scored(concept, n, start, model="churn")`` onto the bus's scored topic."""
    return lambda *args, **kwargs: _fill_scored(bus, *args, **kwargs)


@pytest.fixture
def fill_bus() -> Callable[..., None]:
    """``fill_bus(bus, concept, n, start, model="churn")``: as ``fill_scored``, onto another bus."""
    return _fill_scored


@pytest.fixture
def make_request() -> Callable[..., RetrainRequest]:
    """``make_request(rid, t=100.0, model="churn", version="1")``."""
    return _request


@pytest.fixture
def log_consumer(bus: InMemoryBus) -> Callable[[dict[tuple[str, int], int]], LogConsumer]:
    """``log_consumer(committed)``: a new consumer of the retrain topic from ``committed``."""
    return lambda committed: LogConsumer(bus, TOPICS.retrain, committed)


class LogConsumer:
    """A consumer of one in-memory topic (one partition) whose committed offsets live in ``committed``,
    a dict that outlives it -- as a Kafka group's offsets outlive a killed worker."""

    def __init__(self, bus: InMemoryBus, topic: str, committed: dict[tuple[str, int], int]) -> None:
        self.bus, self.topic, self.committed = bus, topic, committed
        self.position = committed.get((topic, 0), 0)

    def poll(self, max_records: int, timeout: float = 0.0) -> list[Record]:
        records = self.bus.log(self.topic)[self.position : self.position + max_records]
        self.position += len(records)
        return records

    def commit(self, offsets: Mapping[tuple[str, int], int] | None = None) -> None:
        self.committed.update(offsets if offsets is not None else {(self.topic, 0): self.position})

    def close(self) -> None:
        pass


@pytest.fixture
def registry(tmp_path: Any) -> LocalModelRegistry:
    reg = LocalModelRegistry(tmp_path / "reg")
    X, y = World(SC).sample(np.random.default_rng(0), 3000, concept=0, shifted=False)
    reg.register("churn", make_model().fit(X, y))
    return reg


@pytest.fixture
def bus() -> InMemoryBus:
    return InMemoryBus()


@pytest.fixture
def make_worker(registry: LocalModelRegistry, bus: InMemoryBus) -> Callable[..., RetrainWorker]:
    """A new worker over the same registry and bus each call (a restart)."""

    def make(**kwargs: Any) -> RetrainWorker:
        sink = kwargs.pop("sink", None) or bus.sink()
        return RetrainWorker(SETTINGS, TOPICS, registry, bus, sink, **kwargs)

    return make
