"""A real MLflow tracking server for the tests: sqlite store and artifacts in a folder only the server
sees (``--serve-artifacts``), on a free loopback port; clients reach both over HTTP only."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from prometheus_kit import free_port

HAS_MLFLOW = importlib.util.find_spec("mlflow") is not None
SKIP_REASON = "mlflow not installed (pip install -e '.[dev]' brings it)"


@contextmanager
def mlflow_server(work: Path, timeout_s: float = 120.0) -> Iterator[str]:
    """Start ``mlflow server`` with its store under ``work`` (the server's own folder); yield its URL
    once /health answers; stop it (SIGTERM, then SIGKILL) on exit."""
    work.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--backend-store-uri",
        f"sqlite:///{(work / 'mlflow.db').resolve()}",
        "--serve-artifacts",
        "--artifacts-destination",
        str((work / "artifacts").resolve()),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    url = f"http://127.0.0.1:{port}"
    with (work / "server.log").open("wb") as log:
        proc = subprocess.Popen(cmd, cwd=work, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + timeout_s
            while not _healthy(url):
                if proc.poll() is not None or time.monotonic() > deadline:
                    tail = (work / "server.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"mlflow server did not come up (exit {proc.poll()}):\n{tail}")
                time.sleep(0.5)
            yield url
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False
