"""Alert routing: dedup, cooldown, retrain trigger; the webhook sink."""

from __future__ import annotations

from events import alert

from driftline.config import RoutingSettings
from stream_processors.control.routing import AlertRouter


def test_router_dedups_cools_down_and_triggers_retrain_only_for_error_alerts() -> None:
    r = AlertRouter(RoutingSettings(cooldown_s=60))
    first = r.route(alert("a1", t=100))
    assert first.deliver and first.retrain is not None and first.retrain.request_id == "a1"
    assert r.route(alert("a1", t=100)).reason == "duplicate alert id"
    assert r.route(alert("a2", t=130)).reason.startswith("cooldown")
    assert r.route(alert("a3", t=170)).deliver  # cooldown over
    drift = r.route(alert("d1", t=100, kind="data_drift", feature="income"))
    assert drift.deliver and drift.retrain is None  # data drift goes to on-call, not to retraining
    assert r.route(alert("d2", t=101, kind="data_drift", feature="region")).deliver  # another feature


def test_webhook_sink_posts_alert_json_and_never_raises() -> None:
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from stream_processors.control.routing import WebhookSink

    received: list[dict] = []

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
