"""``driftline replay --bootstrap-servers``: a historical file backfilled to the input topics, every
event once, keyed by its model, its event time kept, its version announced first."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from driftline.app.cli import app
from driftline.app.services import collect_topic
from driftline.contracts import Label, ModelUpdate, Prediction, decode
from driftline.spec import ModelSpec

pytestmark = pytest.mark.kafka


def test_a_backfill_produces_every_event_once_with_its_event_time(
    kafka_settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    n = 400
    rng = np.random.default_rng(5)
    t = 1_600_000_000.0 + np.arange(n) * 60.0  # old events, a minute apart
    preds = pd.DataFrame(
        {"prediction_id": np.arange(n), "event_time": t, "income": rng.normal(50, 10, n), "prediction": 1}
    )
    preds["model_version"] = np.where(np.arange(n) < 300, "1", "2")
    labels = pd.DataFrame({"prediction_id": np.arange(n), "event_time": t + 90.0, "label": 1})
    preds.to_parquet(tmp_path / "p.parquet")
    labels.to_csv(tmp_path / "l.csv", index=False)
    spec = tmp_path / "spec.yaml"
    spec.write_text("models:\n  credit-risk:\n    features: {income: numeric}\n")
    settings = kafka_settings(partitions=1, models={"credit-risk": ModelSpec(features={"income": "numeric"})})
    for key, value in settings.to_env().items():
        monkeypatch.setenv(key, value)  # the command reads the same topics
    args = ["replay", "-c", str(spec), "--predictions", str(tmp_path / "p.parquet")]
    args += [
        "--labels",
        str(tmp_path / "l.csv"),
        "--json",
        "--bootstrap-servers",
        settings.kafka.bootstrap_servers,
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.splitlines()[-1])
    assert report == {
        "predictions": n,
        "labels": n,
        "announced": ["credit-risk v1", "credit-risk v2"],
        "undelivered": 0,
        "topics": [settings.topics.predictions, settings.topics.labels],
    }
    got = [decode(Prediction, v) for v in collect_topic(settings, settings.topics.predictions)]
    assert sorted((p.prediction_id, p.event_time, p.model_version) for p in got) == sorted(
        (str(i), t[i], "1" if i < 300 else "2") for i in range(n)
    )
    labelled = [decode(Label, v) for v in collect_topic(settings, settings.topics.labels)]
    assert sorted(lab.event_time for lab in labelled) == sorted(t + 90.0)
    updates = [decode(ModelUpdate, v) for v in collect_topic(settings, settings.topics.models)]
    assert {(u.model, u.version, u.kind) for u in updates} == {
        ("credit-risk", "1", "registered"),
        ("credit-risk", "2", "registered"),
    }
