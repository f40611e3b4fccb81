"""``driftline replay``: historical files through the monitor, the same alerts whatever their format."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from driftline.app.cli import app

SPEC = """\
models:
  credit-risk:
    task: binary
    features:
      income: numeric
      region: categorical
      customer_id: ignore
    reference: {first: 1000}
    columns: {prediction_id: id, event_time: ts}
"""


def write_tables(folder: Path, n: int = 5000, seed: int = 11) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Predictions (income missing in row 0, +2 SD from row 2,500; region codes that CSV reads as
    numbers; calibrated scores; the predictions turn wrong from row 3,500), labels 30 s later, rows
    not in time order."""
    rng = np.random.default_rng(seed)
    income = rng.normal(50.0, 10.0, n)
    income[2500:] += 20.0
    income[0] = np.nan
    score = np.round(rng.random(n), 6)  # calibrated: the label is 1 with probability score
    y = (rng.random(n) < score).astype(int)
    pred = np.where(np.arange(n) < 3500, score > 0.5, score <= 0.5).astype(int)
    t = 1_700_000_000.0 + np.arange(n) * 2.0
    preds = pd.DataFrame(
        {
            "id": np.arange(n),
            "ts": t,
            "income": income,
            "region": rng.choice(["10", "20", "30"], n),
            "customer_id": rng.integers(0, 10**6, n),
            "prediction": pred,
            "score": score,
        }
    )
    labels = pd.DataFrame({"id": np.arange(n), "ts": t + 30.0, "label": y})
    swap = rng.permutation(n)  # the files are not sorted: replay sorts them by event time
    return preds.iloc[swap].reset_index(drop=True), labels.iloc[swap].reset_index(drop=True)


def save(df: pd.DataFrame, path: Path) -> str:
    if path.suffix == ".parquet":
        df.to_parquet(path)
    elif path.suffix == ".csv":
        df.to_csv(path, index=False)
    else:  # JSON lines written with exact floats
        rows = df.astype(object).where(df.notna(), None).to_dict("records")
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, tuple[str, str, str]]:
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    preds, labels = write_tables(tmp_path)
    out = {}
    for ext in ("parquet", "csv", "jsonl"):
        out[ext] = (str(spec), save(preds, tmp_path / f"p.{ext}"), save(labels, tmp_path / f"l.{ext}"))
    return out


def replay(spec: str, preds: str, labels: str, *more: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        app, ["replay", "--config", spec, "--predictions", preds, "--labels", labels, *more]
    )
    return result.exit_code, result.output


def test_the_same_alerts_byte_for_byte_whatever_the_format_and_the_batch(files: dict) -> None:
    code, first = replay(*files["parquet"], "--json")
    assert code == 0, first
    lines = [json.loads(line) for line in first.splitlines()]
    summary = lines[-1]["summary"]
    alerts = lines[:-1]
    assert summary["predictions"] == summary["labels"] == summary["joined"] == 5000
    assert summary["dead_letters"] == 0
    drift = [a for a in alerts if a["type"] == "data_drift"]
    assert drift[0]["feature"] == "income" and 2500 <= drift[0]["detected_at_index"] < 2800
    assert any(
        a["type"] in ("concept_drift", "performance") and a["detected_at_index"] >= 3500 for a in alerts
    )
    assert summary["alerts_by_type"]["data_drift"] == len(drift)
    for ext, batch in (("csv", "700"), ("jsonl", "5000"), ("parquet", "1"), ("csv", "100000")):
        again = replay(*files[ext], "--json", "--batch", batch)
        assert again == (0, first), (ext, batch)


def test_text_output_names_each_alert_and_ends_with_the_counts(files: dict) -> None:
    code, out = replay(*files["csv"])
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith("data_drift credit-risk v1 income [segment: all]")
    assert lines[-1].startswith("replayed 5000 predictions and 5000 labels: 5000 joined, 0 dead letters")


def test_a_row_missing_its_prediction_id_is_a_dead_letter_counted_in_the_summary(tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text(SPEC)
    preds, labels = write_tables(tmp_path, n=600)
    preds["id"] = preds["id"].astype(object)
    preds.loc[3, "id"] = None
    args = [str(tmp_path / "spec.yaml"), save(preds, tmp_path / "p.csv"), save(labels, tmp_path / "l.csv")]
    code, out = replay(*args, "--json")
    assert code == 0, out
    summary = json.loads(out.splitlines()[-1])["summary"]
    assert summary["dead_letters"] == 1 and summary["joined"] == 599
    (reason,) = summary["dead_letters_by_reason"]
    assert "prediction_id" in reason


def test_a_bad_spec_exits_2_naming_the_key(files: dict, tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(SPEC.replace("income: numeric", "income: numerc"))
    _, preds, labels = files["csv"]
    code, out = replay(str(bad), preds, labels)
    assert code == 2 and "models.credit-risk.features.income" in out
    code, out = replay(files["csv"][0], preds.replace(".csv", ".xlsx"), labels)
    assert code == 2 and "unknown file type" in out
