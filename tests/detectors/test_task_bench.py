"""The task scenarios of the detection benchmark, small: for multiclass and regression the recommended
configuration finds the change in every seed, soon, and stays within the false-alarm budget on the
no-drift controls; on heavy-tailed residuals it raises far fewer false alarms than a Gaussian CUSUM on
the raw residuals."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCH))
    try:
        spec = importlib.util.spec_from_file_location("driftline_bench_tasks", BENCH / "detection_tasks.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(BENCH))


@pytest.mark.timeout(120)
def test_multiclass_and_regression_detect_within_the_budget(bench) -> None:
    picked = [
        s
        for s in bench.SCENARIOS
        if (s.task, s.name)
        in {
            ("multiclass", "accuracy 0.85 -> 0.65"),
            ("multiclass", "no drift"),
            ("regression", "residual SD x1.3, t3 residuals"),
            ("regression", "no drift"),
            ("regression", "no drift, t3 residuals"),
        }
    ]
    rows = bench.run_task_scenarios(3, True, lambda _: None, picked)
    table = bench.format_task_table(rows)
    rec = {(r.task, r.scenario): r for r in rows if r.detector.startswith("*")}
    assert len(rec) == 5, table
    for key in [("multiclass", "no drift"), ("regression", "no drift")]:
        assert rec[key].rows >= 150_000 and rec[key].false_alarms_per_100k <= 0.5, table  # 1 alarm: 0.67
    for key in [("multiclass", "accuracy 0.85 -> 0.65"), ("regression", "residual SD x1.3, t3 residuals")]:
        r = rec[key]
        assert r.miss_rate == 0 and r.p90_delay is not None and r.p90_delay <= 1500, table
    # heavy-tailed residuals: reading them raw breaks a Gaussian CUSUM's budget many times over
    t3 = {
        r.detector.strip("* "): r.false_alarms_per_100k
        for r in rows
        if r.scenario == "no drift, t3 residuals"
    }
    assert t3["gaussian_cusum + floor"] > 5 * max(t3["residual_cusum + floor"], 0.5), table
