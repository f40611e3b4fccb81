"""`driftline bench pipeline`, in process and small: every case's stream is fully processed by the
core (each label scored once), its drift is alerted, and the command reports the figures it measured.
The Kafka parts run with the fault suite's broker only when the benchmark itself is run."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from driftline.app.cli import app


@pytest.mark.timeout(120)
def test_bench_pipeline_in_process_processes_every_event() -> None:
    args = ["bench", "pipeline", "--no-kafka", "--quick", "--repeat", "1", "--scale", "0.25", "--json"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    result = json.loads(res.output.strip().splitlines()[-1])
    cases = {c["case"]: c for c in result["cases"]}
    assert list(cases) == [
        "1 model, 8 features",
        "10 models, 4 partitions, 2 instances",
        "1 model, 50 features",
        "1 model, 200 features",
    ]
    for case in cases.values():
        assert case["scored"] == [case["labels"]] and case["all_processed"], case
        assert case["core"] > 0 and case["labels"] > 0
    # the drift in the stream reaches the alert path (the feature shift and the scores' rise)
    assert cases["1 model, 8 features"]["alerts"][0] >= 2
    assert "core" in res.output and "1 model, 200 features" in res.output
