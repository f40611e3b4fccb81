"""The embedded control plane's alert store: a directory with the notifications it sent and the
actions on-call took (``driftline alerts --store DIR``), one JSON event per line, appended.

Kafka mode needs none (the notifications and alert-actions topics are the store); the in-process
runner, which has no broker, writes here when ``routing.store_dir`` is set and feeds the actions
found here to its handler as ``topics.alert_actions`` records.

>>> import tempfile
>>> from driftline.contracts import AlertAction
>>> store = AlertStore(tempfile.mkdtemp())
>>> store.add_action(AlertAction(action_id="a1", action="ack", target="inc-1"))
>>> [a.target for a in store.actions()], store.notifications()
(['inc-1'], [])
"""

from __future__ import annotations

import os
from collections.abc import Iterable

from driftline.contracts import AlertAction, decode, encode

__all__ = ["AlertStore"]

NOTIFICATIONS = "notifications.jsonl"
ACTIONS = "actions.jsonl"


class AlertStore:
    def __init__(self, directory: str) -> None:
        self.directory = directory
        os.makedirs(directory, exist_ok=True)

    def _path(self, name: str) -> str:
        return os.path.join(self.directory, name)

    def _append(self, name: str, values: Iterable[bytes]) -> None:
        lines = b"".join(v + b"\n" for v in values)
        if lines:
            with open(self._path(name), "ab") as f:
                f.write(lines)
                f.flush()
                os.fsync(f.fileno())

    def _read(self, name: str) -> list[bytes]:
        try:
            with open(self._path(name), "rb") as f:
                return [line.rstrip(b"\n") for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def append_notifications(self, values: Iterable[bytes]) -> None:
        self._append(NOTIFICATIONS, values)

    def notifications(self) -> list[bytes]:
        """Every notification the embedded control plane sent, oldest first (encoded)."""
        return self._read(NOTIFICATIONS)

    def add_action(self, action: AlertAction) -> None:
        self._append(ACTIONS, [encode(action)])

    def actions(self) -> list[AlertAction]:
        return [decode(AlertAction, v) for v in self._read(ACTIONS)]

    def action_records(self) -> list[bytes]:
        return self._read(ACTIONS)
