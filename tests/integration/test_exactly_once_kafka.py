"""Exactly-once on the real broker: ``driftline process`` SIGKILLed mid-stream leaves the output
topics, read ``read_committed``, holding exactly the records of an uninterrupted run -- no duplicate,
none missing, not "after dedup" -- and a partition moving between two instances keeps its join buffers.

The stream and the processes are the fault suite's (``benchmarks/fault_kit.py``, ``fault_run.py``).
"""

from __future__ import annotations

import secrets
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest

from driftline.app.services import collect_topic
from driftline.config import StateSettings

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from fault_kit import end_offsets, make_stream, produce  # noqa: E402
from fault_run import OPTIONS, Run, own_outputs  # noqa: E402

pytestmark = pytest.mark.kafka


def everything(settings) -> dict[str, Counter[bytes]]:
    """Every committed record of every output topic, byte for byte, with its count."""
    t = settings.topics
    return {name: Counter(collect_topic(settings, name)) for name in (t.scored, t.metrics, t.alerts, t.dlq)}


@pytest.mark.timeout(240)
@pytest.mark.parametrize("store", ["local", "changelog"])
def test_kill_9_leaves_every_output_exactly_once(kafka_settings, tmp_path, store) -> None:
    state = StateSettings(checkpoint_key=secrets.token_hex(32), store=store)
    settings = kafka_settings(partitions=4, state=state)
    stream = make_stream(12_000, seed=5)
    produce(settings, stream)
    ends = end_offsets(settings)
    killed_settings = own_outputs(settings)
    options = {**OPTIONS, "transactional_id": f"eos-{uuid.uuid4().hex[:8]}"}
    clean = Run("clean", settings, stream, ends, tmp_path / "clean", options=options, timeout=90)
    killed = Run("killed", killed_settings, stream, ends, tmp_path / "killed", options=options, timeout=90)
    try:
        procs = [clean.start()]
        clean.wait(lambda: clean.progress() >= 1.0, "every label scored", procs)  # the last after a drain
        ref = clean.finish(procs)
        procs = [killed.start()]
        for target in (0.3, 0.6):
            killed.kill_at(target, procs)
        killed.wait(procs[0].assigned, "assignment", procs)
        killed.kill_at(0.0, procs)  # back to back: killed again while it restores or replays
        killed.wait(lambda: killed.progress() >= 1.0, "every label scored", procs)
        out = killed.finish(procs)
        want, got = everything(settings), everything(killed_settings)
    finally:
        clean.close()
        killed.close()

    assert clean.crashes == killed.crashes == [] and killed.started == 4
    assert ref.scored_ids == stream.labelled and ref.scored == len(stream.labelled)
    assert out.scored == ref.scored and out.alerts == ref.alerts and out.metrics == ref.metrics
    names = dict(zip(want, ("scored", "metrics", "alerts", "dead letters"), strict=True))
    for (topic, want_records), got_records in zip(want.items(), got.values(), strict=True):
        assert max(got_records.values()) == 1, f"{names[topic]}: a record was committed twice"
        assert got_records == want_records, f"{names[topic]} differ from the uninterrupted run's"
