"""kill -9 of the control plane and of the retrain worker in the closed loop, on the real broker (the
short form of ``driftline bench faults --scenario loop``), and the control plane's ``read_committed``.

The demo's world (a covariate shift, then a concept change; ~12,000 predictions and their labels) is
produced once. ``driftline process``, ``driftline control-plane`` and ``driftline retrain-worker`` run
over it as separate processes twice: once without interruption, once with the control plane SIGKILLed
three times (after its first notification, right after its restart, late in the stream) and the retrain
worker twice (after the first retrain request, after a version is registered), each restarted. A user
must see the same thing after dropping copies by id: the same alerts, notifications and retrain requests,
the same model versions registered and promoted -- one per decided request, none twice -- and the same
outcomes recorded.
"""

from __future__ import annotations

import asyncio
import secrets
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest
from confluent_kafka import Producer
from events import alert

from driftline.app.services import collect_topic, prepare_kafka
from driftline.config import StateSettings
from driftline.contracts import alerts_in, encode

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from fault_kit import end_offsets  # noqa: E402
from fault_loop import LoopRun, compare_loop, kill_loop, make_loop_stream, produce_loop  # noqa: E402

pytestmark = pytest.mark.kafka


@pytest.mark.timeout(420)
def test_kill_9_of_control_plane_and_retrain_worker_changes_nothing_after_dedup(
    kafka_settings, tmp_path
) -> None:
    settings = kafka_settings(partitions=4, state=StateSettings(checkpoint_key=secrets.token_hex(32)))
    scenario, records, labels = make_loop_stream(12_000, seed=7, registry_dir=tmp_path / "stream")
    produce_loop(settings, records)
    ends = end_offsets(settings)
    clean = LoopRun("clean", settings, scenario, ends, labels, tmp_path / "clean", timeout=150)
    killed = LoopRun("killed", settings, scenario, ends, labels, tmp_path / "killed", timeout=150)
    try:
        clean.start_all()
        ref = clean.finish()
        killed.start_all()
        kill_loop(killed, np.random.default_rng(7))
        out = killed.finish()
    finally:  # no process outlives the test
        clean.close()
        killed.close()

    for run in (clean, killed):
        assert run.crashes == [], f"{run.name}: a service exited by itself: {run.crashes}"
    assert len(killed.points) == 5 and killed.started == 3 + 5
    figures = compare_loop(out, ref)
    assert ref.versions and any(stage == "champion" for _, _, stage in ref.versions), ref.versions
    assert len(set(ref.notified)) == len(ref.notified) and set(ref.requests) <= set(ref.notified)
    for run_out in (ref, out):  # each control plane routed exactly what its alerts called for
        assert set(run_out.notified) == set(run_out.routed[0])
        assert set(run_out.requests) == set(run_out.routed[1])
    assert set(out.alerts) == set(ref.alerts), figures
    assert set(out.notified) == set(ref.notified), figures
    assert set(out.requests) == set(ref.requests), figures
    assert out.versions == ref.versions and figures["versions_twice"] == 0, figures
    assert set(out.updates) == set(ref.updates) and len(out.updates) == len(set(out.updates)), figures
    assert out.recorded == ref.recorded, figures


def test_the_control_plane_never_routes_an_alert_of_an_aborted_transaction(kafka_settings, tmp_path) -> None:
    from stream_processors.control.faust_app import create_app

    settings = kafka_settings()
    t = settings.topics
    prepare_kafka(settings)
    producer = Producer(
        {**settings.kafka.client_config(), "transactional.id": f"cp-test-{uuid.uuid4().hex[:6]}"}
    )
    producer.init_transactions(30)
    for alert_id, commit in (("aborted", False), ("kept", True)):
        producer.begin_transaction()
        value = encode(alert(alert_id, model="m", kind="data_drift", feature=alert_id))
        producer.produce(t.alerts, value, b"m")
        producer.flush(30)  # on the broker before the abort (an abort drops what is still queued)
        producer.commit_transaction(30) if commit else producer.abort_transaction(30)

    async def run() -> None:
        app = create_app(settings, app_id=f"cp-rc-{uuid.uuid4().hex[:6]}", datadir=str(tmp_path), sinks=[])
        await app.start()
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not await asyncio.to_thread(
                collect_topic, settings, t.notifications
            ):  # a read blocks: off faust's event loop
                await asyncio.sleep(0.5)
            await asyncio.sleep(1.0)  # an aborted alert routed after the kept one would show up now
        finally:
            await asyncio.wait_for(app.stop(), timeout=30)

    asyncio.run(asyncio.wait_for(run(), timeout=120))
    assert [a.alert_id for a in alerts_in(collect_topic(settings, t.notifications))] == ["kept"]
