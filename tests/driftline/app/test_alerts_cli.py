"""``driftline alerts`` over the embedded store the demo writes (routing.store_dir)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from driftline.app.cli import app
from driftline.app.demo import run_embedded
from driftline.config import DriftlineSettings, RoutingSettings
from driftline.contracts import decode_notification
from producers.simulator import Scenario
from stream_processors.control.store import AlertStore


def test_list_show_ack_and_silence_over_the_demos_store(tmp_path: Path) -> None:
    store = str(tmp_path / "alerts")
    scenario = Scenario(seed=3, n_events=12_000, covariate_shift_at=4_000, concept_change_at=7_000)
    run_embedded(scenario, DriftlineSettings(routing=RoutingSettings(store_dir=store)))
    runner = CliRunner()
    listed = runner.invoke(app, ["alerts", "list", "--store", store, "--json"])
    assert listed.exit_code == 0, listed.output
    rows = [json.loads(line) for line in listed.output.splitlines()]
    assert {r["kind"] for r in rows} == {"data_drift", "performance"} and all(
        r["state"] == "resolved" for r in rows
    )
    shown = runner.invoke(app, ["alerts", "show", rows[1]["id"], "--store", store])
    assert shown.exit_code == 0 and "error rate" in shown.output and "runbook:" in shown.output
    assert runner.invoke(app, ["alerts", "ack", rows[0]["id"], "--store", store]).exit_code == 0
    silenced = runner.invoke(app, ["alerts", "silence", "model=churn", "--for", "2h", "--store", store])
    assert silenced.exit_code == 0 and silenced.output.startswith("silence model=churn until ")
    assert [a.action for a in AlertStore(store).actions()] == ["ack", "silence"]
    tail = runner.invoke(app, ["alerts", "tail", "--store", store, "-n", "3"])
    assert tail.exit_code == 0 and len(tail.output.splitlines()) == 3
    assert len(AlertStore(store).notifications()) == len(
        [decode_notification(v) for v in AlertStore(store).notifications()]
    )
    unknown = runner.invoke(app, ["alerts", "show", "nope", "--store", store])
    assert unknown.exit_code != 0
