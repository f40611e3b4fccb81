"""`driftline demo`: the whole closed loop embedded, through the real CLI, checked as a user would."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from closed_loop import check_closed_loop, check_incidents


def run_demo(*args: str) -> tuple[str, dict]:
    out = subprocess.run(
        [sys.executable, "-m", "driftline.app", "demo", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    return out, json.loads(out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def demo_seed7() -> tuple[str, dict]:
    return run_demo("--json", "--seed", "7")


def test_demo_closes_the_loop(demo_seed7) -> None:
    out, report = demo_seed7
    check_closed_loop(report, shift_at=20_000, concept_at=35_000)
    check_incidents(report, concept_at=35_000)
    assert report["events"] > 100_000 and report["dead_letters"] == 0
    assert {"type", "feature", "detected_at", "drift_started_at"} <= set(report["alerts"][0])
    assert report["wall_time_s"] < 60


def test_demo_prints_a_readable_timeline(demo_seed7) -> None:
    out, report = demo_seed7
    assert "ALERT data_drift" in out and "income" in out
    assert "RETRAIN promoted -> v2" in out and "serving now uses churn v2" in out
    assert "accuracy before drift" in out


def test_demo_is_reproducible_for_a_seed(demo_seed7) -> None:
    _, again = run_demo("--json", "--seed", "7")
    drop = {"wall_time_s"}
    assert {k: v for k, v in again.items() if k not in drop} == {
        k: v for k, v in demo_seed7[1].items() if k not in drop
    }


@pytest.mark.parametrize("seed", [1, 2])
def test_demo_closes_the_loop_for_other_seeds(seed: int) -> None:
    _, report = run_demo("--json", "--seed", str(seed), "--events", "30000")
    check_closed_loop(report, shift_at=10_000, concept_at=17_500)
    check_incidents(report, concept_at=17_500)
