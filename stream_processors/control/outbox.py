"""The outbox: notifications for HTTP sinks are written down first and posted by a worker thread.

A runner (the faust agent, the in-process loop) only :meth:`Outbox.put`\\ s a body -- one SQLite
insert, never a network call on its event loop. :class:`Dispatcher` posts what is due from its own
thread through an httpx client: each attempt is a short tenacity retry (a connection reset passes),
and a notification still undelivered waits with exponential backoff (up to ``routing.retry_max_s``)
and is tried again, for as long as it takes, across restarts when the outbox is a file
(``routing.outbox_dir``). Keys are ``<sink>:<notification id>``; a key put twice (a replay of the
control plane after a kill -9) is stored once, so the receiver gets it once. The one window left is a
kill between a receiver's 2xx and the row's update: the POST is repeated with the same
``X-Driftline-Delivery`` id, which the receiver drops.

>>> box = Outbox()
>>> box.put("webhook:n1", "webhook", b"{}"), box.put("webhook:n1", "webhook", b"{}")
(True, False)
>>> [key for key, *_ in box.due(now=0.0)], box.pending()
(['webhook:n1'], 1)
>>> box.done("webhook:n1"); box.pending()
0
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping

from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from stream_processors.control.http_sinks import DeliveryFailed, HttpSink

__all__ = ["Dispatcher", "Outbox"]

log = logging.getLogger(__name__)

_SCHEMA = """CREATE TABLE IF NOT EXISTS outbox (
    key TEXT PRIMARY KEY, sink TEXT NOT NULL, body BLOB NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL DEFAULT 0, state TEXT NOT NULL DEFAULT 'pending', error TEXT)"""


class Outbox:
    """Undelivered notifications per sink in SQLite (``path``: a file that outlives the process;
    None: memory). Thread-safe: the runner puts, the dispatcher takes."""

    def __init__(self, path: str | None = None) -> None:
        if path:
            os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.path = path or ":memory:"
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL" if path else "PRAGMA journal_mode=MEMORY")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(_SCHEMA)
        self._lock = threading.Lock()
        self.wakeup = threading.Event()

    @classmethod
    def in_dir(cls, directory: str) -> Outbox:
        return cls(os.path.join(directory, "outbox.sqlite3") if directory else None)

    def put(self, key: str, sink: str, body: bytes) -> bool:
        """Stores ``body`` for ``sink`` under ``key`` unless the key is there; True if it was new."""
        with self._lock:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO outbox (key, sink, body) VALUES (?, ?, ?)", (key, sink, body)
            )
        self.wakeup.set()
        return cur.rowcount == 1

    def due(self, now: float, limit: int = 100) -> list[tuple[str, str, bytes, int]]:
        """(key, sink, body, attempts so far) of the pending rows whose time has come, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT key, sink, body, attempts FROM outbox WHERE state = 'pending' AND next_at <= ? "
                "ORDER BY rowid LIMIT ?",
                (now, limit),
            ).fetchall()
        return [(str(k), str(s), bytes(b), int(a)) for k, s, b, a in rows]

    def done(self, key: str) -> None:
        with self._lock:
            self._db.execute("UPDATE outbox SET state = 'delivered', body = x'' WHERE key = ?", (key,))

    def failed(self, key: str, error: str, next_at: float | None) -> None:
        """One more failed attempt; ``next_at`` None: no retry can help (the row is given up)."""
        state = "pending" if next_at is not None else "given_up"
        with self._lock:
            self._db.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_at = ?, state = ?, error = ? WHERE key = ?",
                (next_at or 0.0, state, error[:300], key),
            )

    def pending(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT count(*) FROM outbox WHERE state = 'pending'").fetchone()[0])

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT state, count(*) FROM outbox GROUP BY state").fetchall()
        return {str(s): int(n) for s, n in rows}


class Dispatcher:
    """Posts the outbox's due notifications through their sinks, from a daemon thread."""

    def __init__(
        self,
        outbox: Outbox,
        sinks: Mapping[str, HttpSink],
        *,
        retry_max_s: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.outbox, self.sinks = outbox, dict(sinks)
        self.retry_max_s, self.clock = retry_max_s, clock
        self.delivered = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_due(self) -> int:
        """One pass over what is due now; returns how many were delivered."""
        ok = 0
        for key, name, body, attempts in self.outbox.due(self.clock()):
            sink = self.sinks.get(name)
            if sink is None:
                continue  # a sink no longer configured: kept for when it is again
            try:
                for attempt in Retrying(
                    stop=stop_after_attempt(2),
                    wait=wait_exponential(multiplier=0.05, max=0.2),
                    retry=retry_if_exception(lambda e: isinstance(e, DeliveryFailed) and e.retry),
                    reraise=True,
                ):
                    with attempt:
                        sink.post(body, key.split(":", 1)[1])
            except DeliveryFailed as exc:
                wait = min(self.retry_max_s, 0.25 * 2.0 ** min(attempts, 16))
                self.outbox.failed(key, str(exc), self.clock() + wait if exc.retry else None)
                log.log(
                    logging.WARNING if exc.retry else logging.ERROR,
                    "%s %s: %s not delivered (attempt %d): %s%s",
                    name,
                    sink.target,
                    key,
                    attempts + 1,
                    exc,
                    f"; next try in {wait:.1f} s" if exc.retry else "; given up",
                )
                continue
            self.outbox.done(key)
            ok += 1
        self.delivered += ok
        return ok

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="driftline-outbox", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self.outbox.wakeup.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def drain(self, timeout: float) -> int:
        """Delivers from this thread until nothing is pending or ``timeout`` passes; what is left."""
        deadline = time.monotonic() + timeout
        while self.outbox.pending() and time.monotonic() < deadline:
            if not self.run_due():
                time.sleep(0.05)
        return self.outbox.pending()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_due()
            except Exception:  # the thread must outlive any one bad row
                log.exception("outbox dispatcher pass failed")
            self.outbox.wakeup.wait(0.2)
            self.outbox.wakeup.clear()
