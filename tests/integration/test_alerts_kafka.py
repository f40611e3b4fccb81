"""On-call over Kafka: ``driftline alerts silence`` reaches the faust control plane through the
alert-actions topic and mutes the sinks (not the notifications topic); the metrics resolve an
incident; ``driftline alerts list`` reads it all back from the notifications topic."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import pytest
from events import alert as make_alert
from typer.testing import CliRunner

from driftline.app.cli import app as cli
from driftline.app.services import collect_topic, prepare_kafka
from driftline.config import RoutingSettings
from driftline.contracts import Incident, Metric, Window, decode_notification, encode
from driftline.kafka import KafkaSink
from stream_processors.control.sinks import LogSink

pytestmark = pytest.mark.kafka


def _incidents(settings) -> list[Incident]:  # type: ignore[no-untyped-def]
    notes = map(decode_notification, collect_topic(settings, settings.topics.notifications))
    return [n for n in notes if isinstance(n, Incident)]


def test_a_silence_from_the_cli_mutes_the_sinks_and_metrics_resolve_the_incident(
    kafka_settings, tmp_path, monkeypatch
) -> None:
    from stream_processors.control.faust_app import create_app

    settings = kafka_settings(routing=RoutingSettings(cooldown_s=0))
    t = settings.topics
    prepare_kafka(settings)
    for key, value in settings.to_env().items():
        monkeypatch.setenv(key, value)  # the CLI reads the same topics
    runner = CliRunner()
    said = runner.invoke(cli, ["alerts", "silence", "model=m,kind=data_drift", "--for", "1h"])
    assert said.exit_code == 0, said.output
    sink = KafkaSink(settings.kafka)  # type: ignore[arg-type]
    log = LogSink()

    def send(topic: str, value: bytes) -> None:
        sink.send(topic, b"m", value)
        sink.flush()

    async def wait(cond, what: str) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + 60
        while not await asyncio.to_thread(cond):  # a read blocks: off faust's event loop
            if time.monotonic() > deadline:
                raise AssertionError(f"never saw {what}")
            await asyncio.sleep(0.5)

    async def run() -> None:
        fapp = create_app(
            settings, app_id=f"cp-alerts-{uuid.uuid4().hex[:6]}", datadir=str(tmp_path / "faust"), sinks=[log]
        )
        await fapp.start()
        try:
            send(t.alerts, encode(make_alert("c1", kind="concept_drift", model="m")))
            await wait(lambda: len(_incidents(settings)) == 1, "the performance incident")
            send(t.alerts, encode(make_alert("d1", kind="data_drift", feature="x", model="m")))
            await wait(lambda: len(_incidents(settings)) >= 2, "the data-drift incident")
            for k in range(3):  # version 2 healthy three points in a row, after the alerts
                w = Window(start_index=20 + k, end_index=21 + k, start_time=k, end_time=k, n=1)
                send(
                    t.metrics,
                    encode(Metric(model="m", model_version="2", name="accuracy", value=0.95, window=w)),
                )
            await wait(lambda: any(i.status == "resolved" for i in _incidents(settings)), "a resolution")
            await asyncio.sleep(1.0)
        finally:
            await asyncio.wait_for(fapp.stop(), timeout=30)

    asyncio.run(asyncio.wait_for(run(), timeout=180))
    on_topic = {(i.kind, i.status) for i in _incidents(settings)}
    assert {("performance", "firing"), ("data_drift", "firing")} <= on_topic
    assert ("performance", "resolved") in on_topic and ("data_drift", "resolved") in on_topic
    sunk = {(n.kind, n.status) for n in log.delivered if isinstance(n, Incident)}
    assert sunk == {("performance", "firing"), ("performance", "resolved")}  # data drift: silenced
    listed = runner.invoke(cli, ["alerts", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    states = sorted((r["kind"], r["state"]) for r in map(json.loads, listed.output.splitlines()))
    assert states == [("data_drift", "resolved"), ("performance", "resolved")]
