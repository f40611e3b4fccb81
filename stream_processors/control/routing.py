"""Alert routing (control plane): deduplicate, cool down, and decide on retraining.

The decision logic is pure and keeps its state in two mappings, so the same router runs on
plain dicts (embedded mode) or on faust changelog-backed tables (Kafka mode, see
:mod:`stream_processors.control.faust_app`).

>>> from driftline.config import RoutingSettings
>>> from driftline.contracts import Alert, Window
>>> w = Window(start_index=0, end_index=10, start_time=0.0, end_time=5.0, n=10)
>>> a = Alert(alert_id="x1", type="concept_drift", model="m", model_version="1", feature=None,
...           statistic="adwin", value=0.3, threshold=0.1, window=w,
...           detected_at_index=9, detected_at_time=5.0)
>>> r = AlertRouter(RoutingSettings(cooldown_s=60))
>>> d = r.route(a); d.deliver, d.retrain is not None
(True, True)
>>> r.route(a).reason
'duplicate alert id'
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass

from driftline.config import RoutingSettings
from driftline.contracts import Alert, RetrainRequest

__all__ = ["AlertRouter", "Routed"]


@dataclass(frozen=True)
class Routed:
    alert: Alert
    deliver: bool
    reason: str
    retrain: RetrainRequest | None = None


class AlertRouter:
    def __init__(
        self,
        settings: RoutingSettings,
        seen: MutableMapping[str, float] | None = None,
        last_fired: MutableMapping[str, float] | None = None,
    ) -> None:
        self.settings = settings
        self.seen: MutableMapping[str, float] = {} if seen is None else seen
        self.last_fired: MutableMapping[str, float] = {} if last_fired is None else last_fired

    def route(self, alert: Alert) -> Routed:
        if alert.alert_id in self.seen:
            return Routed(alert, False, "duplicate alert id")
        self.seen[alert.alert_id] = alert.detected_at_time
        key = f"{alert.model}|{alert.model_version}|{alert.type}|{alert.feature}"
        last = self.last_fired.get(key)
        if last is not None and alert.detected_at_time - last < self.settings.cooldown_s:
            return Routed(alert, False, f"cooldown: same alert {alert.detected_at_time - last:.0f}s ago")
        self.last_fired[key] = alert.detected_at_time
        retrain = None
        if alert.type in self.settings.retrain_on:
            retrain = RetrainRequest(
                request_id=alert.alert_id, model=alert.model, model_version=alert.model_version, alert=alert
            )
        return Routed(alert, True, "delivered", retrain)
