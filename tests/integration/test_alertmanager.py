"""The Alertmanager sink against a real Prometheus Alertmanager (Debian package
``prometheus-alertmanager``; ``.ci/run`` installs it), started on a free loopback port: an incident
appears as an active alert with its labels and annotations, and its resolution ends it."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from events import alert

from driftline.config import RoutingSettings
from driftline.contracts import Incident, Metric, Window
from stream_processors.control.incidents import IncidentBook
from stream_processors.control.sinks import Delivery, fan_out

BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
pytestmark = pytest.mark.skipif(
    BINARY is None,
    reason="no Alertmanager: apt-get install prometheus-alertmanager (CI's .ci/run installs it)",
)
CONFIG = """route:
  receiver: "null"
  group_wait: 1s
receivers:
  - name: "null"
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def alertmanager(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "am.yml").write_text(CONFIG)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    assert BINARY is not None
    proc = subprocess.Popen(
        [
            BINARY,
            f"--config.file={tmp_path / 'am.yml'}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=(tmp_path / "am.log").open("wb"),
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"Alertmanager did not start: {(tmp_path / 'am.log').read_text()[-2000:]}")
            time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


def _ours(url: str, incident_id: str) -> list[dict[str, Any]]:
    alerts = httpx.get(f"{url}/api/v2/alerts", timeout=5).json()
    return [a for a in alerts if a["labels"].get("incident_id") == incident_id]


def _wait(check: Any, what: str) -> Any:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.2)
    pytest.fail(f"Alertmanager never showed {what}")


def test_an_incident_appears_in_alertmanager_and_its_resolution_ends_it(
    alertmanager: str, tmp_path: Path
) -> None:
    now = time.time()
    routing = RoutingSettings(
        sinks=("alertmanager",), alertmanager_url=alertmanager, outbox_dir=str(tmp_path)
    )
    book = IncidentBook(routing)
    delivery = Delivery(routing)
    delivery.start()
    try:
        (opened,) = book.on_alert(alert("c1", t=now - 60, kind="performance"), (0, 1))
        fan_out(delivery.sinks, opened)
        (active,) = _wait(lambda: _ours(alertmanager, opened.incident_id), "the incident")
        assert active["status"]["state"] == "active"
        assert active["labels"] == {
            "alertname": "DriftlinePerformance",
            "model": "churn",
            "model_version": "1",
            "kind": "performance",
            "severity": "critical",
            "incident_id": opened.incident_id,
        }
        assert active["annotations"]["summary"] == opened.title
        resolved: list[Incident] = []
        for k in range(3):  # the retrained version is healthy three metric points in a row
            w = Window(
                start_index=k + 10, end_index=k + 11, start_time=now - 3 + k, end_time=now - 3 + k, n=1
            )
            m = Metric(model="churn", model_version="2", name="accuracy", value=0.95, window=w)
            resolved += book.on_metric(m, (1, k))
        (done,) = resolved
        assert done.status == "resolved"
        fan_out(delivery.sinks, done)

        # Alertmanager lists active alerts only: with endsAt passed, the incident leaves the list
        _wait(lambda: not _ours(alertmanager, opened.incident_id), "the incident resolved")
    finally:
        delivery.stop()
    assert delivery.outbox.counts() == {"delivered": 2}
