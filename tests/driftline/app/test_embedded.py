"""The embedded API: your own predictions and labels, in your own process, through the same core."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from driftline.app import Monitor
from driftline.config import DriftlineSettings
from driftline.errors import DriftlineError
from driftline.spec import ModelSpec

SHIFT_AT = 3000


def make_tables(n: int = 6000, seed: int = 4) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A credit model's predictions: income (numeric; missing in the first row), region (categorical),
    customer_id (ignored); income moves +2 SD from row SHIFT_AT on. Labels come 60 s later."""
    rng = np.random.default_rng(seed)
    income = rng.normal(50.0, 10.0, n)
    income[SHIFT_AT:] += 20.0
    income[0] = np.nan
    y = (rng.random(n) < 0.4).astype(int)
    preds = pd.DataFrame(
        {
            "prediction_id": [f"p{i}" for i in range(n)],
            "event_time": 1_700_000_000.0 + np.arange(n),
            "income": income,
            "region": rng.choice(["north", "south", "east"], n),
            "customer_id": np.arange(n) + 10_000,
            "prediction": y,
            "score": np.clip(0.4 + rng.normal(0, 0.05, n), 0, 1),
        }
    )
    labels = pd.DataFrame(
        {"prediction_id": preds.prediction_id, "event_time": preds.event_time + 60.0, "label": y}
    )
    return preds, labels


def settings(**models: ModelSpec) -> DriftlineSettings:
    spec = ModelSpec(
        features={"income": "numeric", "region": "categorical", "customer_id": "ignore"},
        reference={"first": 1000},
    )
    return DriftlineSettings(models=models or {"credit-risk": spec})


def drift(alerts: list) -> list[tuple[str | None, int]]:
    return [(a.feature, a.detected_at_index) for a in alerts if a.type == "data_drift"]


def test_a_declared_numeric_feature_missing_in_its_first_row_is_monitored_and_its_shift_found() -> None:
    preds, labels = make_tables()
    with Monitor(settings()) as monitor:
        seen = monitor.observe(preds)
        seen.alerts += monitor.label(labels).alerts + monitor.flush().alerts
    found = drift(seen.alerts)
    assert found and found[0][0] == "income"
    assert SHIFT_AT <= found[0][1] < SHIFT_AT + 300  # found within 300 predictions of the shift
    assert all(at >= SHIFT_AT for _, at in found)  # and nothing before it
    counts = monitor.counts()
    assert counts["predictions"] == counts["labels"] == counts["joined"] == len(preds)
    assert counts["dead_letters"] == 0 and counts["undeclared_features"] == {}
    frame = seen.to_frame()
    assert {"type", "feature", "window.start_index"} <= set(frame.columns)


def test_iso_8601_and_epoch_event_times_and_rows_as_dicts_give_the_same_alerts() -> None:
    preds, labels = make_tables(n=4500)
    iso = preds.assign(event_time=pd.to_datetime(preds.event_time, unit="s", utc=True).map(_iso))
    naive = preds.assign(event_time=pd.to_datetime(preds.event_time, unit="s"))  # a datetime column, UTC
    runs = []
    for table in (preds, iso, naive, preds.to_dict("records")):
        monitor = Monitor(settings())
        runs.append([(a.alert_id, a.detected_at_time) for a in monitor.replay(table, labels).alerts])
        assert monitor.counts()["dead_letters"] == 0
    assert runs[0] and all(run == runs[0] for run in runs)


def _iso(t: pd.Timestamp) -> str:
    return t.isoformat().replace("+00:00", "Z")


def test_a_row_without_prediction_id_or_time_is_a_dead_letter_not_a_crash() -> None:
    preds, labels = make_tables(n=800)
    preds["prediction_id"] = preds["prediction_id"].astype(object)
    preds.loc[5, "prediction_id"] = None
    preds["event_time"] = preds["event_time"].astype(object)
    preds.loc[7, "event_time"] = "yesterday"
    monitor = Monitor(settings())
    result = monitor.replay(preds, labels)
    counts = monitor.counts()
    assert counts["dead_letters"] == 2 and len(result.dead_letters) == 2
    assert sorted(d.offset for d in result.dead_letters) == [5, 7]  # the rows, by position
    reasons = " ".join(counts["dead_letters_by_reason"])
    assert "prediction_id" in reasons and "event_time" in reasons
    assert counts["joined"] == len(preds) - 2


def test_undeclared_columns_are_reported_once_and_not_monitored(caplog: pytest.LogCaptureFixture) -> None:
    preds, _ = make_tables(n=600)
    monitor = Monitor(settings())
    monitor.observe(preds.assign(tenure=1.0).iloc[:300])
    monitor.observe(preds.assign(tenure=1.0).iloc[300:])
    assert monitor.counts()["undeclared_features"] == {"credit-risk": ["tenure"]}
    assert sum("tenure" in r.message for r in caplog.records) == 1  # logged once, by the core


def test_rows_must_say_which_model_when_the_spec_has_several() -> None:
    spec = ModelSpec(features={"income": "numeric"})
    preds, _ = make_tables(n=200)
    with pytest.raises(DriftlineError, match="Add a 'model' column"):
        Monitor(settings(a=spec, b=spec)).observe(preds)
    both = Monitor(settings(a=spec, b=spec))
    both.observe(
        preds.assign(model=["a", "b"] * 100)[
            ["prediction_id", "event_time", "income", "model"] + ["prediction", "score"]
        ]
    )
    assert both.counts()["predictions"] == 200 and both.counts()["dead_letters"] == 0
    assert set(both.core.models) == {"a", "b"}
    one = Monitor(settings(a=spec, b=spec), model="b")
    one.observe(preds[["prediction_id", "event_time", "income", "prediction", "score"]])
    assert set(one.core.models) == {"b"}


def test_a_closed_monitor_refuses_more_input() -> None:
    preds, _ = make_tables(n=100)
    monitor = Monitor(settings())
    monitor.close()
    with pytest.raises(DriftlineError, match="closed"):
        monitor.observe(preds)


def test_multiclass_probability_columns_reach_the_core_as_the_predictions_probabilities() -> None:
    from driftline.contracts import Prediction, decode
    from driftline.spec import Columns

    rng = np.random.default_rng(2)
    p = rng.dirichlet([1.0, 1.0, 1.0], 300)
    classes = np.array(["cat", "dog", "fox"])
    preds = pd.DataFrame(
        {"pid": range(300), "event_time": np.arange(300.0), "x": rng.normal(size=300)}
        | {"prediction": classes[p.argmax(1)], "p_cat": p[:, 0], "p_dog": p[:, 1], "p_fox": p[:, 2]}
    )
    columns = Columns(prediction_id="pid", probabilities={"cat": "p_cat", "dog": "p_dog", "fox": "p_fox"})
    spec = ModelSpec(task="multiclass", features={"x": "numeric"}, columns=columns)
    monitor = Monitor(settings(zoo=spec))
    records = monitor.encode_predictions(preds).records
    first = decode(Prediction, records[0].value)
    assert first.prediction_id == "0" and first.probabilities == dict(zip(classes, p[0], strict=True))
    monitor.process(records)
    assert monitor.counts()["dead_letters"] == 0 and monitor.counts()["undeclared_features"] == {}
