"""Alert sinks by name: the registry, start-up failures, and what each sink delivers."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from events import alert

from driftline.config import DriftlineSettings, KafkaSettings, RoutingSettings
from driftline.contracts import Alert, decode
from driftline.errors import ConfigError
from driftline.transport import InMemoryBus
from stream_processors.control.sinks import SINKS, LogSink, TopicSink, WebhookSink, build_sinks, fan_out


def test_the_registry_names_log_topic_and_webhook() -> None:
    assert sorted(SINKS) == ["log", "topic", "webhook"]


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (("pager",), "routing.sinks: unknown sink 'pager'; valid names: log, topic, webhook"),
        (
            ("log", "slack", "email"),
            "routing.sinks: unknown sinks 'slack', 'email'; valid names: log, topic, webhook",
        ),
    ],
)
def test_unknown_sink_names_fail_naming_the_setting_and_listing_the_valid_names(
    names: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        build_sinks(RoutingSettings(sinks=names))
    assert str(err.value) == message


@pytest.mark.parametrize(("name", "key"), [("webhook", "webhook_url"), ("topic", "sink_topic")])
def test_a_sink_without_its_setting_fails_at_start_up_naming_the_key(name: str, key: str) -> None:
    with pytest.raises(ConfigError, match=rf"routing\.{key}: set DRIFTLINE_ROUTING__{key.upper()}"):
        build_sinks(RoutingSettings(sinks=("log", name)), InMemoryBus().sink())


def test_build_sinks_builds_each_named_sink_once_in_order() -> None:
    routing = RoutingSettings(
        sinks=("webhook", "log", "topic", "log"), webhook_url="http://h/x", sink_topic="oncall"
    )
    sinks = build_sinks(routing, InMemoryBus().sink())
    assert [type(s) for s in sinks] == [WebhookSink, LogSink, TopicSink]
    assert isinstance(sinks[0], WebhookSink) and sinks[0].url == "http://h/x"
    assert [type(s) for s in build_sinks(RoutingSettings())] == [LogSink]  # the default
    assert build_sinks(RoutingSettings(sinks=())) == []


def test_sinks_come_from_the_environment_as_a_json_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTLINE_ROUTING__SINKS", '["log", "webhook"]')
    monkeypatch.setenv("DRIFTLINE_ROUTING__WEBHOOK_URL", "http://h/x")
    routing = DriftlineSettings().routing
    assert routing.sinks == ("log", "webhook")
    assert [type(s) for s in build_sinks(routing)] == [LogSink, WebhookSink]


def test_the_faust_app_fails_at_creation_on_a_bad_sink_setting(tmp_path: Path) -> None:
    from stream_processors.control.faust_app import create_app

    settings = DriftlineSettings(
        kafka=KafkaSettings(bootstrap_servers="127.0.0.1:9"), routing=RoutingSettings(sinks=("webhook",))
    )
    with pytest.raises(ConfigError, match=r"routing\.webhook_url"):
        create_app(settings, datadir=str(tmp_path))


def test_topic_sink_publishes_the_alert_keyed_by_model_at_detection_time() -> None:
    bus = InMemoryBus()
    (sink,) = build_sinks(RoutingSettings(sinks=("topic",), sink_topic="oncall"), bus.sink())
    sink.deliver(alert("t1", t=42.0))
    (rec,) = bus.log("oncall")
    assert decode(Alert, rec.value).alert_id == "t1"
    assert (rec.key, rec.timestamp) == (b"churn", 42.0)


def test_fan_out_goes_on_past_a_failing_sink(caplog: pytest.LogCaptureFixture) -> None:
    class Broken:
        def deliver(self, alert: Alert) -> None:
            raise RuntimeError("down")

    after = LogSink()
    fan_out([Broken(), after], alert("f1"))
    assert [a.alert_id for a in after.delivered] == ["f1"]
    assert "Broken failed on alert f1" in caplog.text


def test_webhook_sink_posts_alert_json_and_never_raises() -> None:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.handle_request, daemon=True).start()
    try:
        sink = WebhookSink(f"http://127.0.0.1:{server.server_port}/hook")
        sink.deliver(alert("w1", kind="data_drift", feature="income"))
    finally:
        server.server_close()
    assert received and received[0]["alert"]["alert_id"] == "w1"
    assert received[0]["alert"]["feature"] == "income" and "text" in received[0]
    down = WebhookSink(f"http://127.0.0.1:{server.server_port}/hook", timeout=0.5)  # nobody listens now
    down.deliver(alert("w2"))
    assert down.failures == 1
