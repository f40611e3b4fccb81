"""The monitor spec in the processor core: declared features (never guessed), undeclared ones reported
once, a reference file or a pinned version's reference, features' own budgets, and bad specs failing at
start-up naming the key."""

from __future__ import annotations

import logging
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from events import record

from detectors.calibration import arl_from_budget
from driftline.config import MonitorSettings, Topics
from driftline.contracts import Alert, DeadLetter, Prediction
from driftline.errors import ConfigError
from driftline.spec import ModelSpec
from stream_processors.core.processor import CoreOutput, ProcessorCore

TOPICS = Topics()
SETTINGS = MonitorSettings(reference_size=1000, window_size=250)
FEATURES: dict[str, Any] = {"income": "numeric", "region": "categorical", "customer_id": "ignore"}


def preds(start: int, n: int, rng: np.random.Generator, shift: float = 0.0, version: str = "1") -> list[Any]:
    """Records of model ``m``: income ~ N(shift, 1) (every 10th missing), region a/b, an id."""
    income = rng.normal(shift, 1.0, n)
    region = rng.choice(["a", "b"], n)
    out = []
    for k in range(n):
        i = start + k
        value = None if i % 10 == 0 else float(income[k])
        features = {"income": value, "region": str(region[k]), "customer_id": f"c{i}"}
        p = Prediction(
            prediction_id=f"m-{i}", model="m", model_version=version, event_time=float(i),
            features=features, prediction=1, score=float(rng.random()),
        )  # fmt: skip
        out.append(record(p))
    return out


def feed(core: ProcessorCore, records: list[Any], batch: int = 500) -> CoreOutput:
    out = CoreOutput()
    for a in range(0, len(records), batch):
        out.extend(core.process(records[a : a + batch]))
    return out


def drift(out: CoreOutput, feature: str = "income") -> list[Alert]:
    return [a for a in out.alerts if a.type == "data_drift" and a.feature == feature]


def core_for(spec: ModelSpec | None, settings: MonitorSettings = SETTINGS) -> ProcessorCore:
    return ProcessorCore(settings, TOPICS, models=None if spec is None else {"m": spec})


def test_a_declared_numeric_feature_missing_at_first_is_monitored_and_its_shift_detected() -> None:
    rng = np.random.default_rng(1)
    core = core_for(ModelSpec(features=FEATURES))
    assert feed(core, preds(0, 2000, rng)).alerts == []
    out = feed(core, preds(2000, 1000, rng, shift=2.0))
    [a] = drift(out)
    assert a.direction == "increase" and 2000 <= a.detected_at_index < 2100
    assert core.models["m"].versions["1"].kinds == {"income": "numeric", "region": "categorical"}
    # without the spec the first prediction's missing income would have made it categorical
    guessed = core_for(None)
    feed(guessed, preds(0, 10, rng))
    assert guessed.models["m"].versions["1"].kinds["income"] == "categorical"


def test_undeclared_features_are_reported_once_and_not_monitored(caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(2)
    core = core_for(ModelSpec(features=FEATURES))

    def with_extra(records: list[Any], shift: float) -> list[Any]:
        out = []
        for r in records:
            p = pickle.loads(pickle.dumps(_decode(r)))
            p.features["extra"] = float(rng.normal(shift, 1))
            out.append(record(p))
        return out

    with caplog.at_level(logging.WARNING, logger="stream_processors.core.model_monitor"):
        feed(core, with_extra(preds(0, 1500, rng), 0.0))
        out = feed(core, with_extra(preds(1500, 1500, rng), 5.0))  # a huge shift in "extra"
    warned = [r.getMessage() for r in caplog.records if "not declared" in r.getMessage()]
    assert len(warned) == 1 and "['extra']" in warned[0] and "models.m.features" in warned[0]
    assert core.undeclared() == {"m": {"extra": 3000}}
    assert out.alerts == [] and out.dead_letters == []  # ignored, not dead-lettered, not monitored


def test_a_declared_feature_missing_from_an_event_is_a_dead_letter_with_its_reason() -> None:
    rng = np.random.default_rng(3)
    core = core_for(ModelSpec(features=FEATURES))
    bad = _decode(preds(0, 1, rng)[0])
    del bad.features["region"]
    out = core.process([record(bad)])
    [dl] = out.dead_letters
    assert isinstance(dl, DeadLetter) and "['region']" in dl.reason and "send null" in dl.reason


def _decode(rec: Any) -> Prediction:
    from driftline.contracts import decode

    return decode(Prediction, rec.value)


def _reference_file(tmp_path: Path, n: int, suffix: str = ".csv", score: bool = False) -> str:
    rng = np.random.default_rng(9)
    frame = pd.DataFrame({"income": rng.normal(0, 1, n), "region": rng.choice(["a", "b"], n)})
    if score:
        frame["score"] = rng.random(n)
    path = tmp_path / f"reference{suffix}"
    if suffix == ".csv":
        frame.to_csv(path, index=False)
    elif suffix == ".parquet":
        frame.to_parquet(path)
    else:
        frame.to_json(path, orient="records", lines=True)
    return str(path)


@pytest.mark.parametrize(("suffix", "score"), [(".csv", False), (".parquet", True), (".jsonl", False)])
def test_a_reference_file_is_monitored_against_from_the_first_prediction(
    tmp_path: Path, suffix: str, score: bool
) -> None:
    spec = ModelSpec(features=FEATURES, reference={"path": _reference_file(tmp_path, 1500, suffix, score)})
    core = core_for(spec)
    rng = np.random.default_rng(4)
    out = feed(core, preds(0, 300, rng, shift=1.0))  # shifted from the start: no live reference could see it
    [a] = drift(out)
    assert a.detected_at_index < 200 and a.direction == "increase"
    features = core.models["m"].versions["1"].features
    assert (features.score_drift is None) == score  # scores from the file, else from the live rows


def test_a_pinned_version_reference_is_copied_into_a_new_version(caplog: pytest.LogCaptureFixture) -> None:
    rng = np.random.default_rng(5)
    spec = ModelSpec(features=FEATURES, reference={"version": "1"})
    core = core_for(spec)
    feed(core, preds(0, 1200, rng, version="1"))
    out = feed(core, preds(1200, 400, rng, shift=1.0, version="2"))  # v2 serves shifted data from the start
    assert [a.model_version for a in drift(out)] == ["2"]
    # without version 1's state, a new version learns its own reference (and says so)
    alone = core_for(spec)
    with caplog.at_level(logging.WARNING, logger="stream_processors.core.reference"):
        out = feed(alone, preds(0, 1400, rng, shift=1.0, version="2"))
    assert drift(out) == [] and any("pinned reference version '1'" in r.getMessage() for r in caplog.records)


def test_a_feature_budget_reaches_its_threshold_and_survives_a_checkpoint() -> None:
    features = {**FEATURES, "income": {"type": "numeric", "false_alarms_per_100k": 0.01}}
    core = core_for(ModelSpec(features=features, false_alarms_per_100k=0.2))
    rng = np.random.default_rng(6)
    feed(core, preds(0, 1200, rng))
    detector = core.models["m"].versions["1"].features.drift
    stream = {s.name: s for s in detector.streams}["income"]
    own = stream.thresholds.copy()
    stream.calibrate(arl_from_budget(0.01))
    np.testing.assert_allclose(own, stream.thresholds)
    restored = pickle.loads(pickle.dumps(core.models))
    later = preds(1200, 600, rng, shift=2.0)
    expected = [a.alert_id for a in feed(core, later).alerts]
    again = core_for(ModelSpec(features=features, false_alarms_per_100k=0.2))
    again.adopt(0, restored)
    assert expected and [a.alert_id for a in feed(again, later).alerts] == expected


@pytest.mark.parametrize(
    ("rows", "features", "match"),
    [
        (50, FEATURES, r"models\.m\.reference\.path: .* has 50 rows"),
        (500, {**FEATURES, "age": "numeric"}, r"models\.m\.reference\.path: .* no column .*\['age'\]"),
    ],
)
def test_a_bad_reference_file_fails_at_start_up_naming_the_key(
    tmp_path: Path, rows: int, features: dict[str, Any], match: str
) -> None:
    spec = ModelSpec(features=features, reference={"path": _reference_file(tmp_path, rows)})
    with pytest.raises(ConfigError, match=match):
        core_for(spec)


def test_feature_budgets_above_the_models_fail_at_start_up() -> None:
    features = {**FEATURES, "income": {"type": "numeric", "false_alarms_per_100k": 0.5}}
    with pytest.raises(ConfigError, match=r"models\.m\.features: .* add up to 0\.5"):
        core_for(ModelSpec(features=features, false_alarms_per_100k=0.2))


def test_a_restore_under_a_changed_spec_applies_it_to_the_next_versions(caplog) -> None:
    """A processor restarted with an edited spec: the restored model's monitored version keeps its
    state and its declaration; a version that appears afterwards follows the new spec."""
    rng = np.random.default_rng(5)
    before = core_for(ModelSpec(features={"income": "numeric", "region": "ignore", "customer_id": "ignore"}))
    feed(before, preds(0, 1200, rng))
    restored = pickle.loads(pickle.dumps(before.models))
    after = core_for(ModelSpec(features=FEATURES, segments=["region"]))
    with caplog.at_level(logging.WARNING):
        after.adopt(0, restored)
    assert "another spec" in caplog.text
    feed(after, preds(1200, 300, rng) + preds(1500, 1200, rng, version="2"))
    mon = after.models["m"]
    assert mon.versions["1"].kinds == {"income": "numeric"}  # kept, with its state
    assert mon.versions["1"].features.clock.rows == 1500
    assert mon.versions["2"].kinds == {"income": "numeric", "region": "categorical"}
    assert mon.segments is not None and set(mon.segments) == {"2"}  # segments from the new spec on
    same = core_for(ModelSpec(features=FEATURES, segments=["region"]))
    caplog.clear()
    same.adopt(0, pickle.loads(pickle.dumps(after.models)))
    assert "another spec" not in caplog.text
