"""The control plane in process (embedded mode): alerts in, routed notifications and retrain requests out."""

from __future__ import annotations

import logging

from driftline.config import Topics
from driftline.contracts import Alert, decode, encode
from driftline.errors import InvalidEvent
from driftline.transport import Record, Sink, Source
from stream_processors.control.routing import AlertRouter, AlertSink, Routed

__all__ = ["AlertRoutingRunner"]

log = logging.getLogger(__name__)


class AlertRoutingRunner:
    """Control plane, embedded: routes alerts, delivers them, emits retrain requests."""

    def __init__(
        self, router: AlertRouter, source: Source, sink: Sink, topics: Topics, sinks: list[AlertSink]
    ) -> None:
        self.router, self.source, self.sink, self.topics, self.sinks = router, source, sink, topics, sinks
        self.routed: list[Routed] = []

    def run_once(self, timeout: float = 0.0) -> int:
        records = self.source.poll(1000, timeout)
        for rec in records:
            self.handle(rec)
        if records:
            self.sink.flush()
            self.source.commit()
        return len(records)

    def handle(self, rec: Record) -> Routed | None:
        try:
            alert = decode(Alert, rec.value)
        except InvalidEvent as exc:
            log.error("alert routing: invalid alert at %s/%d: %s", rec.topic, rec.offset, exc)
            return None
        routed = self.router.route(alert)
        self.routed.append(routed)
        if routed.deliver:
            for s in self.sinks:
                s.deliver(alert)
        if routed.retrain is not None:
            self.sink.send(
                self.topics.retrain, alert.model.encode(), encode(routed.retrain), alert.detected_at_time
            )
        return routed
