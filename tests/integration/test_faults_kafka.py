"""kill -9 of ``driftline process`` on the real broker (the short form of ``driftline bench faults``).

A seeded ~15,000-record drifting stream for two models on 4 partitions (labels 0.2-3 s behind their
predictions, a few bad records: ``benchmarks/fault_kit.py``) is processed once without interruption and
once with the processor SIGKILLed at three points and restarted each time (checkpoints every second).
Outputs and input offsets commit in one transaction, and the join merges the two inputs by event time,
so the killed run's outputs (read ``read_committed``) must be exactly the uninterrupted run's: every
label scored once, no record twice, the same dead letters, the same alert ids on the predictions *and* on
the labelled stream, the same metric values; the processor keeps running after each restart (no crash
loop) and stops cleanly.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

import pytest

from driftline.config import StateSettings

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from fault_kit import MODELS, end_offsets, make_stream, produce  # noqa: E402
from fault_run import Run, own_outputs  # noqa: E402

pytestmark = pytest.mark.kafka

LABELLED_KINDS = {"concept_drift", "performance"}


def kinds(out, labelled: bool) -> set[tuple[str, str]]:
    """(model, alert type) of the alerts on the labelled stream (or of the others)."""
    return {(m, t) for m, t, _ in out.alert_kinds.values() if (t in LABELLED_KINDS) == labelled}


def group_members(settings, group: str) -> list[str | None]:
    """The ``group.instance.id`` of each member of consumer group ``group`` (None: a dynamic member)."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient(settings.kafka.client_config())
    described = admin.describe_consumer_groups([group])[group].result(timeout=10)
    return [m.group_instance_id for m in described.members]


def ids(out, labelled: bool) -> set[str]:
    return {a for a, (_, t, _) in out.alert_kinds.items() if (t in LABELLED_KINDS) == labelled}


@pytest.mark.timeout(180)
def test_kill_9_at_three_points_loses_nothing_and_never_crash_loops(kafka_settings, tmp_path) -> None:
    settings = kafka_settings(partitions=4, state=StateSettings(checkpoint_key=secrets.token_hex(32)))
    stream = make_stream(15_000, seed=3)
    produce(settings, stream)
    ends = end_offsets(settings)

    clean = Run("clean", settings, stream, ends, tmp_path / "clean", timeout=60)
    killed = Run("killed", own_outputs(settings), stream, ends, tmp_path / "killed", timeout=60)
    try:
        ref = clean.finish([clean.start()])
        procs = [killed.start()]
        for target in (0.25, 0.5, 0.75):
            killed.kill_at(target, procs)
        killed.wait(procs[0].assigned, "assignment", procs)
        # a static member (group.instance.id: its transactional id): the restart took the killed one's
        # place in the group at once, instead of a new member waiting out the dead one's session
        members = group_members(killed.settings, killed.group)
        out = killed.finish(procs)
    finally:  # no processor outlives the test
        clean.close()
        killed.close()

    for run in (clean, killed):
        assert run.crashes == [], f"{run.name}: a processor exited by itself: {run.crashes}"
    assert killed.started == 4 and len(killed.points) == 3
    assert members == [f"{killed.group}-0"]  # one member, the instance's own id: the dead one replaced
    assert ref.scored_ids == out.scored_ids == stream.labelled  # every label scored ...
    assert ref.scored == out.scored == len(ref.scored_ids)  # ... exactly once, even after the kills
    assert ref.dead_letter_ids == out.dead_letter_ids and len(ref.dead_letter_ids) == stream.bad
    assert out.dead_letters == ref.dead_letters == stream.bad
    assert out.alert_kinds == ref.alert_kinds and out.alerts == ref.alerts  # the same alerts, once
    assert kinds(ref, labelled=True) == {(m, t) for m in MODELS for t in LABELLED_KINDS}
    assert ids(ref, labelled=False) != set()
    assert out.metric_values == ref.metric_values and out.metrics == ref.metrics
    assert out.metric_conflicts == ref.metric_conflicts == 0
