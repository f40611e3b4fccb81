"""On-call's acks and silences, as the control plane applies them to what reaches the alert sinks.

They arrive as :class:`~driftline.contracts.AlertAction` records (``driftline alerts ack|silence``)
and are kept in one entry of the routing state (the faust table on Kafka), written whole, so they
survive a restart like every other routing decision. They only mute the sinks: the notifications
topic keeps every alert and incident revision (``driftline alerts list`` shows them muted).

>>> from driftline.contracts import AlertAction
>>> mutes = Mutes({})
>>> mutes.apply(AlertAction(action_id="s1", action="silence", target="model=churn,kind=data_drift",
...                         until=2000.0))
>>> mutes.silenced({"model": "churn", "kind": "data_drift", "severity": "info"}, now=1000.0)
's1'
>>> mutes.silenced({"model": "churn", "kind": "data_drift"}, now=3000.0) is None  # expired
True
>>> parse_duration("90m"), parse_matcher("model=churn, severity=critical")
(5400.0, {'model': 'churn', 'severity': 'critical'})
"""

from __future__ import annotations

import re
from collections.abc import Mapping, MutableMapping
from typing import Any

from driftline.contracts import Alert, AlertAction, Incident, Notification
from driftline.errors import ConfigError

__all__ = ["MATCH_KEYS", "Mutes", "labels_of", "parse_duration", "parse_matcher"]

MATCH_KEYS = ("model", "model_version", "kind", "severity", "feature")
_KEY = "actions"  # the routing state's entry
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_MAX_KEPT = 1000


def parse_duration(text: str) -> float:
    """``30s``, ``15m``, ``2h``, ``1d``, ``1w`` (or a number of seconds) in seconds."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text)
    if m is None or float(m.group(1)) <= 0:
        raise ConfigError(f"duration {text!r}: use a positive number with s, m, h, d or w, e.g. 2h")
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]


def parse_matcher(text: str) -> dict[str, str]:
    """``key=value`` pairs separated by commas; keys among :data:`MATCH_KEYS`."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, eq, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or key not in MATCH_KEYS or not value:
            raise ConfigError(
                f"matcher {text!r}: use key=value[,key=value...] with keys {', '.join(MATCH_KEYS)}, "
                "e.g. model=churn,kind=data_drift"
            )
        out[key] = value
    if not out:
        raise ConfigError(
            "an empty matcher would silence everything: name at least one key=value, e.g. model=churn"
        )
    return out


def labels_of(note: Notification) -> dict[str, str] | None:
    """What a matcher is compared with; None for notifications that cannot be muted (retrains)."""
    if isinstance(note, Incident):
        return {
            "model": note.model,
            "model_version": note.model_version,
            "kind": note.kind,
            "severity": note.severity,
            "feature": ",".join(note.features),
        }
    if isinstance(note, Alert):
        kind = "performance" if note.type in ("concept_drift", "performance") else "data_drift"
        return {
            "model": note.model,
            "model_version": note.model_version,
            "kind": kind,
            "severity": note.severity,
            "feature": note.feature or "",
        }
    return None


class Mutes:
    """The acks and silences in force, in ``state`` (the routing state: one entry)."""

    def __init__(self, state: MutableMapping[str, Any]) -> None:
        self.state = state

    def _entry(self) -> dict[str, Any]:
        entry = self.state.get(_KEY)
        return (
            {"acks": dict(entry["acks"]), "silences": list(entry["silences"])}
            if entry
            else {
                "acks": {},
                "silences": [],
            }
        )

    def apply(self, action: AlertAction) -> None:
        entry = self._entry()
        if action.action == "ack":
            entry["acks"][action.target] = action.by or action.action_id
            entry["acks"] = dict(list(entry["acks"].items())[-_MAX_KEPT:])
        else:
            parse_matcher(action.target)  # a bad matcher is refused before it is kept
            silence = {"id": action.action_id, "matcher": action.target, "until": action.until}
            entry["silences"] = [s for s in entry["silences"] if s["id"] != action.action_id][-_MAX_KEPT:]
            entry["silences"].append(silence)
        self.state[_KEY] = entry  # one write per action

    def acked(self, incident_id: str) -> bool:
        return incident_id in self._entry()["acks"]

    def silenced(self, labels: Mapping[str, str], now: float) -> str | None:
        """The id of a silence in force that matches ``labels``, if any."""
        for s in self._entry()["silences"]:
            if s["until"] is not None and s["until"] <= now:
                continue
            wanted = parse_matcher(s["matcher"])
            if all(_matches(k, v, labels) for k, v in wanted.items()):
                return str(s["id"])
        return None

    def muted(self, note: Notification, now: float) -> bool:
        """Whether the sinks should not get ``note``: silenced, or an acked incident's update."""
        labels = labels_of(note)
        if labels is None:
            return False
        if self.silenced(labels, now) is not None:
            return True
        return isinstance(note, Incident) and note.status == "firing" and self.acked(note.incident_id)


def _matches(key: str, value: str, labels: Mapping[str, str]) -> bool:
    if key == "feature":
        return value in labels.get("feature", "").split(",")
    return labels.get(key) == value
