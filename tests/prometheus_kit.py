"""A real Prometheus for the tests: Debian's ``prometheus`` started on a free loopback port, scraping
the targets it is given, and PromQL queries that wait until it has an answer. ``.ci/run`` installs it."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

BINARY = shutil.which("prometheus")
RULES = Path(__file__).resolve().parents[1] / "deploy" / "prometheus" / "driftline.rules.yml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def prometheus(work: Path, jobs: Mapping[str, int]) -> Iterator[str]:
    """A Prometheus scraping ``127.0.0.1:<port>`` of each job every second, with Driftline's rules;
    yields its base URL once it says it is ready."""
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [f"127.0.0.1:{port}"]}]}
            for job, port in jobs.items()
        ],
    }
    (work / "prometheus.yml").write_text(yaml.safe_dump(config))
    port, log = free_port(), work / "prometheus.log"
    proc = subprocess.Popen(
        [
            BINARY or "prometheus",
            f"--config.file={work / 'prometheus.yml'}",
            f"--storage.tsdb.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log.open("w"),
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_ready(base, log)
        yield base
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def wait_ready(base: str, log: Path, timeout: float = 90.0) -> None:
    """Until Prometheus says it is ready (before that its API answers 503 Service Unavailable)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/-/ready", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass  # not listening yet
        time.sleep(0.5)
    raise AssertionError(f"Prometheus not ready after {timeout:.0f} s: {log.read_text()[-3000:]}")


def query(base: str, expr: str, timeout: float = 90.0) -> list[dict[str, Any]]:
    """The query's result once it has one (Prometheus starts, then scrapes); [] after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            body = httpx.get(f"{base}/api/v1/query", params={"query": expr}, timeout=5).json()
            if body.get("status") == "success" and body["data"]["result"]:
                return list(body["data"]["result"])
        except (httpx.HTTPError, ValueError):
            pass  # not listening yet, or not serving queries yet (503, not JSON)
        time.sleep(1)
    return []
