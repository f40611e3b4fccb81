"""The examples run as a user runs them (their own commands, from the repository root) and tell the
story their READMEs promise."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _run(cmd: list[str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_credit_service_alerts_retrains_with_its_own_trainer_and_serves_the_new_version() -> None:
    out = _run([sys.executable, "examples/credit_service/service.py", "--json"]).stdout
    summary = json.loads(out.strip().splitlines()[-1])
    drift_at = summary["drift_at"]
    assert [a for a in summary["alerts"] if a["at"] < drift_at] == []  # no false alarm before it
    first = {a["type"]: a["at"] - drift_at for a in reversed(summary["alerts"])}
    assert 0 <= first["concept_drift"] <= 500 and 0 <= first["data_drift"] <= 500
    (retrain,) = summary["retrains"]
    assert (retrain["status"], retrain["version"], summary["served_version"]) == ("promoted", "2", "2")
    declared = ["income", "debt_ratio", "age", "region", "employment"]  # customer_id: ignore
    assert [c["columns"] for c in summary["trainer_calls"]] == [declared]  # the spec's train:fit did it
    assert summary["accuracy_after_retrain"] > summary["accuracy_after_drift_v1"] + 0.3


def _has_replay() -> bool:
    done = subprocess.run([str(BIN / "driftline"), "replay", "--help"], capture_output=True, timeout=120)
    return done.returncode == 0


def test_regression_replay_finds_the_degradation_in_the_parquet_files(tmp_path) -> None:
    if not _has_replay():
        pytest.skip("driftline replay is not in this build yet (issue 9, the replay command)")
    folder = ROOT / "examples" / "regression_replay"
    _run([sys.executable, str(folder / "make_data.py"), "--out", str(tmp_path)])
    cmd = [str(BIN / "driftline"), "replay", "--config", str(folder / "spec.yaml"), "--json"]
    files = ["--predictions", str(tmp_path / "predictions.parquet")]
    files += ["--labels", str(tmp_path / "labels.parquet")]
    lines = [json.loads(line) for line in _run(cmd + files).stdout.strip().splitlines()]
    *alerts, summary = lines
    drift_at = json.loads((tmp_path / "meta.json").read_text())["drift_at"]
    assert alerts, summary
    assert all(a["detected_at_index"] >= drift_at for a in alerts)  # nothing before the change
    kinds = {a["type"] for a in alerts}
    assert kinds & {"concept_drift", "performance"}, kinds  # the degradation, from the residuals
    assert "data_drift" in kinds  # and the input that moved
