"""The detection benchmark's --quick mode: table structure, the recommended configuration (the registry's
for error streams) finds the 0.5 sigma shift and the 0.1 -> 0.3 error change, budgets are explicit."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from detectors.registry import RECOMMENDED_ERROR_DETECTOR

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "detection.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("driftline_bench_detection", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.timeout(120)
def test_quick_run_prints_the_table(bench, capsys) -> None:
    assert bench.main(["--quick", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    rows = out["rows"]
    assert out["quick"] is True and out["seeds"] == 3
    keys = {
        "scenario",
        "detector",
        "recommended",
        "mean_delay",
        "miss_rate",
        "false_alarms_per_100k",
        "us_per_update",
        "seeds",
        "events",
        "power",
    }
    assert all(set(r) == keys for r in rows)
    scenarios = list(dict.fromkeys(r["scenario"] for r in rows))
    for needle in (
        "abrupt",
        "ramp",
        "+0.25 sigma",
        "+0.5 sigma",
        "categorical",
        "no drift error",
        "SEA",
        "Agrawal",
        "STAGGER",
        "Sine",
        "20 features no drift",
    ):
        assert any(needle in s for s in scenarios), needle
    for s in scenarios:
        assert sum(r["recommended"] for r in rows if r["scenario"] == s) == 1, s
    assert any(r["detector"].startswith("river:") for r in rows)
    table = bench.format_table([bench.Row(**r) for r in rows])
    header = table.splitlines()[0].split()
    assert header == ["scenario", "detector", "delay", "miss", "FA/100k", "us/upd", "power"]
    assert len(table.splitlines()) >= len(rows) + 2

    def recommended(needle: str) -> dict:
        return next(r for r in rows if needle in r["scenario"] and r["recommended"])

    for needle in ("+0.5 sigma", "0.1->0.3 abrupt"):
        r = recommended(needle)
        assert r["miss_rate"] == 0 and r["mean_delay"] is not None and r["false_alarms_per_100k"] <= 0.5
    for needle in ("0.1->0.3 abrupt", "no drift error", "SEA"):
        assert recommended(needle)["detector"].startswith(f"driftline:{RECOMMENDED_ERROR_DETECTOR} ")
    # published figures must not follow the detectors' default budget: every CUSUM row states its own
    cusums = {r["detector"] for r in rows if "cusum" in r["detector"] and "bank" not in r["detector"]}
    assert cusums and all(f"false_alarms_per_100k={out['budget_per_100k']}" in d for d in cusums)
