"""`driftline bench pipeline`, small: every case's stream is fully processed (each label scored
once), its drift is alerted, and the command reports the figures it measured -- in process, and on
the session's Kafka broker with `driftline process` end to end."""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from driftline.app.cli import app

LAST_LABEL = 2799  # the first case's labels at --quick --scale 0.2: offsets 0..2799 of one partition


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


@pytest.mark.kafka
@pytest.mark.timeout(300)
def test_bench_pipeline_on_kafka_processes_every_event_end_to_end(kafka_bootstrap: str) -> None:
    """The Kafka cases in a short form on the session's broker, as a child process (the benchmark
    forks its `driftline process` instances): in every case, the raw and decoding consumers read
    every record, and `driftline process` -- exactly-once, checkpoints on, two instances in one case
    -- scores each label once and produces the alerts the core produces in process; the part of its
    time after the last input offset was read (the final snapshot and close) is a part of the run."""
    cmd = [str(Path(sys.executable).parent / "driftline"), "bench", "pipeline", "-b", kafka_bootstrap]
    cmd += ["--quick", "--scale", "0.2", "--repeat", "1", "--only", "cases", "--json"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert [c["case"] for c in result["cases"]][1] == "10 models, 4 partitions, 2 instances"
    for case in result["cases"]:
        assert case["all_processed"] and case["scored"] == [case["labels"]], case
        assert len(case["alerts"]) == 1, case  # the same alerts in process and on Kafka
        assert min(case["raw"], case["decode"], case["core"], case["process"]) > 0, case
        run_s = case["events"] / case["process"]  # first batch read to close (rates are rounded)
        assert 0 <= case["process_tail_s"] <= run_s + 0.01, case
    assert result["cases"][0]["alerts"][0] >= 2  # the stream's drift reaches the alerts topic
    assert "tail s" in done.stdout


@pytest.mark.kafka
@pytest.mark.timeout(240)
def test_a_transaction_aborted_on_the_last_batch_is_replayed_before_the_run_counts_its_outputs(
    kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run ends once every input offset was read; a transaction aborted on the batch that read
    the last ones rewinds the partition (exactly-once), and those offsets count as unread again until
    the replay -- else the benchmark would stop first and report the aborted outputs as lost. The
    abort is injected in the forked `driftline process` instance (fork keeps the patches)."""
    import argparse

    from driftline.kafka import KafkaSource
    from driftline.kafka_transactions import TransactionAborted
    from stream_processors.runners.kafka import KafkaRunner

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2] / "benchmarks"))
    import pipeline

    poll, send = KafkaSource.poll, KafkaRunner._send
    last, aborted = [False], multiprocessing.get_context("fork").Value("i", 0)  # (shared with the fork)

    def last_seen(self: KafkaSource, max_records: int, timeout: float = 0.0) -> list:  # type: ignore[type-arg]
        recs = poll(self, max_records, timeout)
        last[0] = last[0] or any(
            r.offset == LAST_LABEL and r.topic.startswith("driftline.labels") for r in recs
        )
        return recs

    def abort_once(self: KafkaRunner, out: object) -> None:
        send(self, out)
        if last[0] and not aborted.value:
            aborted.value += 1
            raise TransactionAborted("injected: the transaction of the batch that read the last label")

    monkeypatch.setattr(KafkaSource, "poll", last_seen)
    monkeypatch.setattr(KafkaRunner, "_send", abort_once)
    args = argparse.Namespace(quick=True, scale=0.2, repeat=1)
    row = pipeline.run_case(pipeline.CASES[0], args, kafka_bootstrap)
    assert row["labels"] == LAST_LABEL + 1 and aborted.value == 1
    assert row["all_processed"] and row["scored"] == [row["labels"]], row
