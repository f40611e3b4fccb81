"""Probes and process control for the local Kafka broker of ``kafka_local.py``: is it answering
(ApiVersions over a raw socket, metadata through confluent-kafka when installed), is a PID our
broker, stop it (TERM, then KILL), and a watchdog that stops it once its owner has exited.

Standard library only. ``kafka_local.py`` imports it as a sibling (``.ci`` is on the path: as the
script's own directory, through pytest's ``pythonpath``, or ``benchmarks/_broker.py``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import struct
import time
from pathlib import Path

STOP_TIMEOUT_S = 20.0

__all__ = ["api_versions", "is_our_broker", "metadata_ok", "stop", "watch"]


def api_versions(host: str, port: int, timeout: float = 2.0) -> dict[int, tuple[int, int]]:
    """Send a Kafka ApiVersions v0 request; return {api_key: (min_version, max_version)}."""
    client_id = b"driftline-kafka-local"
    body = struct.pack(">hhih", 18, 0, 7, len(client_id)) + client_id
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(struct.pack(">i", len(body)) + body)
        size = struct.unpack(">i", _recv(s, 4))[0]
        resp = _recv(s, size)
    correlation, error, count = struct.unpack(">ihi", resp[:10])
    if correlation != 7 or error != 0:
        raise OSError(f"ApiVersions answered correlation={correlation} error={error}")
    keys = (struct.unpack_from(">hhh", resp, 10 + 6 * i) for i in range(count))
    return {key: (lo, hi) for key, lo, hi in keys}


def _recv(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise OSError("connection closed")
        buf += chunk
    return buf


def metadata_ok(bootstrap: str, timeout: float) -> bool:
    """If confluent-kafka is importable, require a metadata answer naming broker 1; else trust ApiVersions."""
    try:
        from confluent_kafka.admin import AdminClient  # noqa: PLC0415  (optional here)
    except ImportError:
        return True
    try:
        md = AdminClient({"bootstrap.servers": bootstrap}).list_topics(timeout=timeout)
    except Exception:
        return False
    return 1 in md.brokers


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:  # reap our own child (the fixture started it)
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def is_our_broker(pid: int, workdir: Path) -> bool:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"kafka.Kafka" in cmd and str(workdir / "server.properties").encode() in cmd


def stop(workdir: str | Path, timeout: float = STOP_TIMEOUT_S, sig: int = signal.SIGTERM) -> bool:
    """Stop the broker started in ``workdir`` (``sig``, then KILL); return whether one was running."""
    workdir = Path(workdir).resolve()
    pid_file = workdir / "broker.pid"
    if not pid_file.is_file():
        return False
    pid = int(pid_file.read_text())
    if not _alive(pid) or not is_our_broker(pid, workdir):
        pid_file.unlink(missing_ok=True)
        return False
    os.killpg(pid, sig)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        os.killpg(pid, signal.SIGKILL)
        while _alive(pid):
            time.sleep(0.05)
    pid_file.unlink(missing_ok=True)
    return True


def watch(pid: int, workdir: str | Path) -> None:
    """Stop the broker in ``workdir`` once process ``pid`` has exited (or the broker is gone)."""
    pid_file = Path(workdir) / "broker.pid"
    while pid_file.is_file():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            stop(workdir)
            return
        time.sleep(1.0)
