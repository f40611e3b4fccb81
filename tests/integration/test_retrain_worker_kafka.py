"""kill -9 of ``driftline retrain-worker`` on the real broker while a request waits for data: the
restarted worker reads the request again (it was never committed) and retrains exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from events import alert

from driftline.app.services import collect_topic, prepare_kafka, wait_until
from driftline.config import RetrainSettings
from driftline.contracts import ModelUpdate, Prediction, RetrainRequest, Scored, decode, encode
from driftline.kafka import KafkaSink
from driftline.registry import LocalModelRegistry
from producers.simulator import Scenario, World, make_model

pytestmark = pytest.mark.kafka

SC = Scenario(n_events=10_000, covariate_shift_at=2000, concept_change_at=4000, seed=5)


def _request(now: float) -> RetrainRequest:
    return RetrainRequest(request_id="a1", model="churn", model_version="1", alert=alert("a1", t=now))


def _send_scored(sink: KafkaSink, topic: str, now: float, n: int) -> None:
    """``n`` labelled events after the concept change, timed from ``now`` on (the broker keeps them)."""
    X, y = World(SC).sample(np.random.default_rng(1), n, concept=1, shifted=True)
    for i, (row, label) in enumerate(zip(X.to_dict("records"), y, strict=True)):
        t = now + 1 + i * 0.001
        p = Prediction(
            prediction_id=f"p{i}", model="churn", model_version="1", event_time=t, features=row, prediction=0
        )
        sink.send(topic, b"churn", encode(Scored(prediction=p, label=int(label), label_time=t, index=i)), t)
    assert sink.flush(30) == 0


class Worker:
    """``python -m driftline.app retrain-worker`` with the settings in its environment."""

    def __init__(self, env: dict[str, str], registry: Path, group: str, log: Path) -> None:
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "driftline.app",
                    "retrain-worker",
                    "--registry-dir",
                    str(registry),
                    "--group",
                    group,
                ],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def says(self, text: str) -> bool:
        assert self.proc.poll() is None, f"the worker exited:\n{self.text()}"
        return text in self.text()

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self, sig: int) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, sig)
        self.proc.wait(30)


def test_a_killed_retrain_worker_retrains_exactly_once_after_a_restart(kafka_settings, tmp_path) -> None:
    reg_dir = tmp_path / "registry"
    settings = kafka_settings(
        partitions=1, retrain=RetrainSettings(min_samples=400, train_window=1000, registry_dir=str(reg_dir))
    )
    t = settings.topics
    prepare_kafka(settings)
    registry = LocalModelRegistry(reg_dir)
    X, y = World(SC).sample(np.random.default_rng(0), 3000, concept=0, shifted=False)
    registry.register("churn", make_model().fit(X, y))
    sink = KafkaSink(settings.kafka, block=True)  # type: ignore[arg-type]
    now = time.time()
    sink.send(t.retrain, b"churn", encode(_request(now)), now)
    assert sink.flush(30) == 0

    env = {**os.environ, **settings.to_env(), "DRIFTLINE_LOG_LEVEL": "INFO"}
    waiting = "retrain a1 for churn: waiting for"
    first = Worker(env, reg_dir, "retrain-kill-test", tmp_path / "first.log")
    try:
        assert wait_until(lambda: first.says(waiting), 60), first.text()
    finally:
        first.stop(signal.SIGKILL)  # kill -9 while the request waits for data
    assert registry.outcomes("churn") == {} and [v.version for v in registry.versions("churn")] == ["1"]

    second = Worker(env, reg_dir, "retrain-kill-test", tmp_path / "second.log")
    try:
        assert wait_until(lambda: second.says(waiting), 90), second.text()  # read again: never committed
        _send_scored(sink, t.scored, now, 1000)
        assert wait_until(lambda: "a1" in registry.outcomes("churn"), 90), second.text()
    finally:
        second.stop(signal.SIGTERM)  # a clean stop commits what is decided
    assert second.proc.returncode == 0, second.text()

    updates = [decode(ModelUpdate, v) for v in collect_topic(settings, t.models)]
    promoted = [(u.version, u.triggered_by) for u in updates if getattr(u, "kind", "promoted") == "promoted"]
    assert promoted == [("2", "a1")]
    assert [v.version for v in registry.versions("churn")] == ["1", "2"]
    assert registry.outcomes("churn")["a1"]["status"] == "promoted"
