"""Alert sinks by name: the registry, start-up failures, and what each sink delivers."""

from __future__ import annotations

import json
import logging
import socket
import threading
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from events import alert
from pydantic import SecretStr

from driftline.config import DriftlineSettings, KafkaSettings, RoutingSettings
from driftline.contracts import Alert, decode
from driftline.errors import ConfigError
from driftline.signing import SignatureError, verify
from driftline.transport import InMemoryBus
from stream_processors.control.sinks import SINKS, LogSink, TopicSink, WebhookSink, build_sinks, fan_out

SECRET = "0123456789abcdef" * 4
VALID = "alertmanager, log, slack, topic, webhook"


def test_the_registry_names_every_sink() -> None:
    assert sorted(SINKS) == ["alertmanager", "log", "slack", "topic", "webhook"]


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (("pager",), f"routing.sinks: unknown sink 'pager'; valid names: {VALID}"),
        (("log", "sms", "email"), f"routing.sinks: unknown sinks 'sms', 'email'; valid names: {VALID}"),
    ],
)
def test_unknown_sink_names_fail_naming_the_setting_and_listing_the_valid_names(
    names: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        build_sinks(RoutingSettings(sinks=names))
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("webhook", "webhook_url"),
        ("topic", "sink_topic"),
        ("slack", "slack_webhook_url"),
        ("alertmanager", "alertmanager_url"),
    ],
)
def test_a_sink_without_its_setting_fails_at_start_up_naming_the_key(name: str, key: str) -> None:
    with pytest.raises(ConfigError, match=rf"routing\.{key}: set DRIFTLINE_ROUTING__{key.upper()}"):
        build_sinks(RoutingSettings(sinks=("log", name)), InMemoryBus().sink())


def test_build_sinks_builds_each_named_sink_once_in_order() -> None:
    routing = RoutingSettings(
        sinks=("webhook", "log", "topic", "log"),
        webhook_url=SecretStr("https://h/x"),
        webhook_secret=SecretStr(SECRET),
        sink_topic="oncall",
    )
    sinks = build_sinks(routing, InMemoryBus().sink())
    assert [type(s) for s in sinks] == [WebhookSink, LogSink, TopicSink]
    assert isinstance(sinks[0], WebhookSink) and sinks[0].target == "https://h/…"
    assert [type(s) for s in build_sinks(RoutingSettings())] == [LogSink]  # the default
    assert build_sinks(RoutingSettings(sinks=())) == []


def test_sinks_come_from_the_environment_as_a_json_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DRIFTLINE_ROUTING__SINKS", '["log", "webhook"]')
    monkeypatch.setenv("DRIFTLINE_ROUTING__WEBHOOK_URL", "https://h/x")
    monkeypatch.setenv("DRIFTLINE_ROUTING__WEBHOOK_SECRET", SECRET)
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


TOKEN = "tok3n-s3cret"
HOOK_PATH = f"/services/T0/B0/{TOKEN}?token=qu3ry"
FORBIDDEN = (TOKEN, "qu3ry", "/services", SECRET)


@dataclass
class Receiver:
    """A local webhook receiver: records each POST and answers with the next status in ``replies``."""

    port: int
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    replies: list[int] = field(default_factory=list)

    def url(self, path: str = HOOK_PATH) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    box: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            body = self.rfile.read(int(self.headers["Content-Length"]))
            box[0].requests.append((self.path, dict(self.headers), body))
            status = box[0].replies.pop(0) if box[0].replies else 200
            self.send_response(status)
            if status in (301, 302, 307, 308):
                self.send_header("Location", "/elsewhere")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    box.append(Receiver(server.server_port))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield box[0]
    finally:
        server.shutdown()
        server.server_close()


def local_webhook(url: str, **overrides: Any) -> RoutingSettings:
    settings: dict[str, Any] = {
        "sinks": ("webhook",),
        "webhook_secret": SECRET,
        "webhook_allow_http_localhost": True,
    }
    return RoutingSettings(**{**settings, "webhook_url": url, **overrides})


def test_webhook_sink_posts_signed_alert_json_that_verify_accepts(receiver: Receiver) -> None:
    (sink,) = build_sinks(local_webhook(receiver.url()))
    assert isinstance(sink, WebhookSink)
    sink.deliver(alert("w1", kind="data_drift", feature="income"))
    assert sink.failures == 0
    ((path, headers, body),) = receiver.requests
    assert path == HOOK_PATH
    verify(SECRET, body, headers)  # the receiver's whole check
    assert headers["X-Driftline-Delivery"] == "w1"
    assert headers["Content-Type"] == "application/json"
    sent = json.loads(body)
    assert sent["alert"]["alert_id"] == "w1" and sent["alert"]["feature"] == "income" and "text" in sent
    with pytest.raises(SignatureError, match="bad signature"):
        verify("another secret of thirty-two chars", body, headers)


def test_the_signature_timestamp_comes_from_the_sinks_clock(receiver: Receiver) -> None:
    sink = WebhookSink(receiver.url(), SECRET, allow_http_localhost=True, clock=lambda: 1_700_000_000.7)
    sink.deliver(alert("c1"))
    ((_, headers, body),) = receiver.requests
    assert headers["X-Driftline-Timestamp"] == "1700000000"
    verify(SECRET, body, headers, now=1_700_000_000)
    with pytest.raises(SignatureError, match="stale timestamp"):
        verify(SECRET, body, headers, now=1_700_000_000 + 301)


def test_an_error_status_or_a_redirect_is_a_failure_and_no_redirect_is_followed(
    receiver: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.replies += [500, 302, 307]
    (sink,) = build_sinks(local_webhook(receiver.url()))
    for i in range(3):
        fan_out([sink], alert(f"e{i}"))
    assert isinstance(sink, WebhookSink) and sink.failures == 3
    assert [path for path, _, _ in receiver.requests] == [HOOK_PATH] * 3  # /elsewhere never asked
    assert [r.getMessage().rsplit(": ", 1)[1] for r in caplog.records] == ["HTTP 500", "HTTP 302", "HTTP 307"]


@pytest.mark.parametrize(
    ("url", "allow", "says"),
    [
        (f"http://hooks.example.com{HOOK_PATH}", True, "plain http to a non-loopback host"),
        (f"http://10.0.0.7:8080{HOOK_PATH}", True, "plain http to a non-loopback host"),
        (f"http://127.0.0.1:8080{HOOK_PATH}", False, "routing.webhook_allow_http_localhost=true"),
        (f"http://localhost{HOOK_PATH}", False, "DRIFTLINE_ROUTING__WEBHOOK_ALLOW_HTTP_LOCALHOST=true"),
        (f"ftp://hooks.example.com{HOOK_PATH}", True, "must be an https://HOST/... URL"),
        (f"file:///etc{HOOK_PATH}", True, "must be an https://HOST/... URL"),
        (f"hooks.example.com{HOOK_PATH}", True, "must be an https://HOST/... URL"),
        (f"https://hooks.example.com{HOOK_PATH} ", True, "must be an https://HOST/... URL"),
        (f"https:///{TOKEN}", True, "must be an https://HOST/... URL"),
        (f"https://hooks.example.com:99999{HOOK_PATH}", True, "not a valid URL"),
        (f"https://bot:{TOKEN}@hooks.example.com/services", True, "carries user:password@"),
    ],
)
def test_a_webhook_url_that_is_not_https_fails_at_start_up_naming_the_key_not_the_url(
    url: str, allow: bool, says: str
) -> None:
    with pytest.raises(ConfigError) as err:
        build_sinks(local_webhook(url, webhook_allow_http_localhost=allow))
    text = "".join(traceback.format_exception(err.value))
    assert "routing.webhook_url" in text and says in text
    assert not [bit for bit in FORBIDDEN if bit in text]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_plain_http_is_accepted_for_loopback_hosts_only_when_allowed(host: str) -> None:
    (sink,) = build_sinks(local_webhook(f"http://{host}:8080{HOOK_PATH}"))
    assert repr(sink) == f"WebhookSink(webhook http://{host}:8080/…)"
    assert [
        type(s) for s in build_sinks(local_webhook(f"https://{host}/x", webhook_allow_http_localhost=False))
    ]


def test_the_webhook_sink_without_a_secret_fails_at_start_up_saying_how_to_make_one() -> None:
    routing = RoutingSettings(
        sinks=("webhook",), webhook_url=SecretStr(f"https://hooks.example.com{HOOK_PATH}")
    )
    with pytest.raises(ConfigError) as err:
        build_sinks(routing)
    message = str(err.value)
    assert "routing.webhook_secret: set DRIFTLINE_ROUTING__WEBHOOK_SECRET" in message
    assert 'python -c "import secrets; print(secrets.token_hex(32))"' in message
    assert "driftline.signing.verify" in message and TOKEN not in message
    with pytest.raises(ConfigError, match="needs routing.webhook_secret"):
        WebhookSink("https://hooks.example.com/x", "")


@pytest.mark.parametrize("short", ["", "hunter2", "x" * 31])
def test_a_short_webhook_secret_fails_naming_the_key_but_not_the_value(short: str) -> None:
    with pytest.raises(ConfigError) as err:
        RoutingSettings(webhook_secret=SecretStr(short))
    message = str(err.value)
    assert message.startswith("routing.webhook_secret:") and "at least 32 characters" in message
    assert "secrets.token_hex(32)" in message and (not short or short not in message)


def _dead_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("down", ["refused", "silent"])
def test_a_failing_delivery_logs_the_host_only_never_the_token_or_the_secret(
    down: str, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    with socket.socket() as silent:  # accepts the connection (backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = _dead_port() if down == "refused" else int(silent.getsockname()[1])
        routing = local_webhook(f"http://127.0.0.1:{port}{HOOK_PATH}")
        (sink,) = build_sinks(routing)
        assert isinstance(sink, WebhookSink)
        sink.timeout = 0.3
        fan_out([sink], alert("d1"))  # never raises into the router
    assert sink.failures == 1
    (record,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert record.getMessage().startswith(f"webhook http://127.0.0.1:{port}/…: delivery of alert d1 failed: ")
    assert record.exc_info is None
    shown = "\n".join(
        [caplog.text, *(str(r.args) for r in caplog.records), *capsys.readouterr()]
        + [repr(sink), str(vars(sink)), repr(routing), str(routing)]
    )
    assert not [bit for bit in FORBIDDEN if bit in shown]


def test_a_model_routed_by_its_spec_reaches_only_its_own_sinks(tmp_path: Path) -> None:
    """models.<m>.routing.sinks sends that model's notifications to its sinks instead of
    routing.sinks; other models keep routing.sinks; a bad name fails at start-up naming the key."""
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        "routing: {sinks: [log], sink_topic: oncall.payments}\n"
        "models:\n"
        "  payments:\n"
        "    features: {amount: numeric}\n"
        "    routing: {sinks: [topic], runbook: 'https://runbooks.example.com/payments/{kind}'}\n"
        "  churn:\n"
        "    features: {age: numeric}\n"
    )
    settings = DriftlineSettings.load(config=str(spec))
    assert settings.routing.model_sinks == {"payments": ("topic",)}
    assert settings.routing.runbooks["payments"].endswith("/payments/{kind}")
    bus = InMemoryBus()
    sinks = build_sinks(settings.routing, bus.sink())
    for note in (alert("p1", model="payments"), alert("c1", model="churn")):
        fan_out(sinks, note)
    published = [decode(Alert, r.value).alert_id for r in bus.source(["oncall.payments"], "t").poll(10)]
    assert published == ["p1"]  # the churn alert went to the log sink only
    spec.write_text(spec.read_text().replace("sinks: [topic]", "sinks: [pager]"))
    with pytest.raises(ConfigError, match=r"models\.payments\.routing\.sinks: unknown sink 'pager'"):
        build_sinks(DriftlineSettings.load(config=str(spec)).routing, bus.sink())
