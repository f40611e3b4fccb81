"""Alert routing (control plane): deduplicate, cool down, and decide on retraining.

The decision logic is pure. Its state is one entry per cooldown key (model, version, alert type,
feature) in a mapping: a plain dict in embedded mode, a faust changelog-backed table on Kafka
(:mod:`stream_processors.control.faust_app`). An entry holds everything a decision about that key
needs -- when the key last fired and which alert ids it has decided, where each was read and whether
it was delivered -- and is written whole, once per alert. So after a kill -9 the recovered entry is
always a consistent prefix of that key's decisions, whatever part of the changelog reached the broker:

* an alert read again from the position it was first read at (a replay: its offset was not
  committed) gets the decision it got the first time -- its notification and retrain request are
  sent again (the same bytes and ids, so readers drop the copy by id) -- never "duplicate";
* an alert id already decided at another position (the processor sent it twice) is a duplicate;
* an alert the entry has not seen is decided on the entry as it stood just before it.

>>> from driftline.config import RoutingSettings
>>> from driftline.contracts import Alert, Window
>>> w = Window(start_index=0, end_index=10, start_time=0.0, end_time=5.0, n=10)
>>> a = Alert(alert_id="x1", type="concept_drift", model="m", model_version="1", feature=None,
...           statistic="adwin", value=0.3, threshold=0.1, window=w,
...           detected_at_index=9, detected_at_time=5.0)
>>> r = AlertRouter(RoutingSettings(cooldown_s=60))
>>> d = r.route(a, at=(0, 7)); d.deliver, d.retrain is not None
(True, True)
>>> r.route(a, at=(0, 8)).reason  # the same id at another offset: sent twice
'duplicate alert id'
>>> d = r.route(a, at=(0, 7)); d.deliver, d.replayed  # read again from offset 7 after a restart
(True, True)
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

from driftline.config import RoutingSettings
from driftline.contracts import Alert, RetrainRequest

__all__ = ["IDS_PER_KEY", "AlertRouter", "Routed", "cooldown_key"]

IDS_PER_KEY = 512
"""Alert ids an entry remembers (the newest): a replay reaches back minutes, not hundreds of alerts of
one key. An older id read again is older than the key's last firing, so the cooldown holds it back."""

State = MutableMapping[str, Any]  # cooldown key -> entry (JSON-able: a faust table's json values)


@dataclass(frozen=True)
class Routed:
    alert: Alert
    deliver: bool
    reason: str
    retrain: RetrainRequest | None = None
    replayed: bool = False  # the same record decided before a restart: its sinks were already called


def cooldown_key(alert: Alert) -> str:
    """Alerts that share this key share one cooldown (a segment's alerts have their own)."""
    key = f"{alert.model}|{alert.model_version}|{alert.type}|{alert.feature}"
    if alert.segment:
        key += "|" + ",".join(f"{k}={v}" for k, v in sorted(alert.segment.items()))
    return key


class AlertRouter:
    """Decides each alert once; ``state`` maps :func:`cooldown_key` to that key's entry."""

    def __init__(
        self, settings: RoutingSettings, state: State | None = None, *, ids_per_key: int = IDS_PER_KEY
    ) -> None:
        if ids_per_key < 1:
            raise ValueError(f"ids_per_key must be at least 1, got {ids_per_key}")
        self.settings, self.ids_per_key = settings, ids_per_key
        self.state: State = {} if state is None else state

    def route(self, alert: Alert, at: tuple[int, int] | None = None) -> Routed:
        """Decide ``alert``; ``at`` is where it was read (partition, offset), None if nowhere."""
        key = cooldown_key(alert)
        entry = self.state.get(key) or {"fired_at": None, "fired_id": None, "ids": {}}
        first = entry["ids"].get(alert.alert_id)
        if first is not None and at is not None and (first[0], first[1]) == at:
            return self._routed(alert, bool(first[2]), "replayed after a restart", replayed=True)
        if first is not None or entry["fired_id"] == alert.alert_id:
            return Routed(alert, False, "duplicate alert id")
        last = entry["fired_at"]
        since = None if last is None else alert.detected_at_time - last
        deliver = since is None or since >= self.settings.cooldown_s
        ids = dict(entry["ids"])
        ids[alert.alert_id] = [*(at or (-1, -1)), deliver]
        for old in list(ids)[: max(0, len(ids) - self.ids_per_key)]:
            del ids[old]
        fired = (alert.detected_at_time, alert.alert_id) if deliver else (last, entry["fired_id"])
        self.state[key] = {"fired_at": fired[0], "fired_id": fired[1], "ids": ids}  # one write per alert
        if not deliver:
            return Routed(alert, False, f"cooldown: same alert {since:.0f}s ago")
        return self._routed(alert, True, "delivered")

    def _routed(self, alert: Alert, deliver: bool, reason: str, *, replayed: bool = False) -> Routed:
        retrain = None
        if deliver and alert.type in self.settings.retrain_on:
            retrain = RetrainRequest(
                request_id=alert.alert_id, model=alert.model, model_version=alert.model_version, alert=alert
            )
        return Routed(alert, deliver, reason, retrain, replayed)
