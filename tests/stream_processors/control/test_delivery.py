"""Delivery through the outbox: a receiver that is down, then back, gets every notification exactly
once -- across a restart of the control plane and a replay of what it had already stored."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from events import alert

from driftline.config import RoutingSettings
from driftline.contracts import Incident
from driftline.signing import verify
from stream_processors.control.incidents import IncidentBook
from stream_processors.control.sinks import Delivery, fan_out

SECRET = "0123456789abcdef" * 4
DOWN_S = float(os.environ.get("DRIFTLINE_TEST_RECEIVER_DOWN_S", "3"))  # the figure: 30


class Receiver:
    """A webhook receiver on a fixed port that is not listening until :meth:`up` (connections are
    refused), then records every POST: delivery id, body, headers."""

    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = int(s.getsockname()[1])
        self.got: list[tuple[str, bytes, dict[str, str]]] = []
        self._server: ThreadingHTTPServer | None = None

    def up(self) -> None:
        got = self.got

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                got.append((self.headers["X-Driftline-Delivery"], body, dict(self.headers)))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def ids(self) -> list[str]:
        return [i for i, _, _ in self.got]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    try:
        yield r
    finally:
        r.down()


def routing(port: int, outbox: Path) -> RoutingSettings:
    return RoutingSettings(
        sinks=("log", "webhook"),
        webhook_url=f"http://127.0.0.1:{port}/hook",
        webhook_secret=SECRET,
        webhook_allow_http_localhost=True,
        outbox_dir=str(outbox),
        retry_max_s=0.5,
    )


def notifications(n: int, start: int = 0) -> list[Incident]:
    """``n`` incident notifications: data-drift alerts on ``n`` model versions."""
    book = IncidentBook(RoutingSettings())
    out: list[Incident] = []
    for i in range(start, start + n):
        out += book.on_alert(alert(f"a{i}", kind="data_drift", feature="x", version=str(i + 1)), (0, i))
    return out


def wait_until_sent(delivery: Delivery, deadline_s: float = 60.0) -> None:
    end = time.monotonic() + deadline_s
    while delivery.outbox.pending() and time.monotonic() < end:
        time.sleep(0.05)


def test_a_receiver_down_then_back_gets_every_notification_exactly_once(
    receiver: Receiver, tmp_path: Path
) -> None:
    delivery = Delivery(routing(receiver.port, tmp_path))
    delivery.start()
    sent = notifications(20)
    try:
        for note in sent:  # while the receiver is down: none may be lost
            fan_out(delivery.sinks, note)
            time.sleep(DOWN_S / 40)
        time.sleep(DOWN_S / 2)
        assert receiver.got == [] and delivery.outbox.pending() == len(sent)
        receiver.up()
        wait_until_sent(delivery)
    finally:
        delivery.stop()
    assert sorted(receiver.ids()) == sorted(n.notification_id for n in sent)  # each exactly once
    for _, body, headers in receiver.got:
        verify(SECRET, body, headers)  # signed at the attempt that went through
        assert json.loads(body)["incident"]["status"] == "firing"
    assert delivery.outbox.counts() == {"delivered": len(sent)}


def test_after_a_restart_and_a_replay_the_outbox_sends_what_was_left_once(
    receiver: Receiver, tmp_path: Path
) -> None:
    first = Delivery(routing(receiver.port, tmp_path))
    before = notifications(6)
    receiver.up()
    for note in before[:3]:
        fan_out(first.sinks, note)
    assert first.dispatcher.drain(30.0) == 0  # three delivered
    receiver.down()
    for note in before[3:]:
        fan_out(first.sinks, note)  # three stored, undelivered: then the process is killed
    assert first.dispatcher.run_due() == 0
    del first

    again = Delivery(routing(receiver.port, tmp_path))  # the restarted control plane
    for note in before:  # the replay of the alerts after the last committed offset
        fan_out(again.sinks, note)
    after = notifications(2, start=6)
    for note in after:
        fan_out(again.sinks, note)
    receiver.up()
    assert again.dispatcher.drain(30.0) == 0
    ids = receiver.ids()
    assert sorted(ids) == sorted(n.notification_id for n in before + after)
    assert len(ids) == len(set(ids))


def test_a_receiver_that_rejects_a_notification_is_not_asked_again(tmp_path: Path) -> None:
    class Rejecting(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(400)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Rejecting)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        delivery = Delivery(routing(server.server_port, tmp_path))
        fan_out(delivery.sinks, notifications(1)[0])
        assert delivery.dispatcher.drain(10.0) == 0
    finally:
        server.shutdown()
        server.server_close()
    assert delivery.outbox.counts() == {"given_up": 1}  # a 4xx: retrying cannot help
