"""The control plane in process (embedded mode): alerts, metrics and model updates in
(:attr:`~stream_processors.control.handler.AlertHandler.inputs`), notifications, incidents, retrain
requests and dead letters out, through the same handler as the faust agent."""

from __future__ import annotations

from collections.abc import Sequence

from driftline.transport import Record, Sink, Source
from stream_processors.control.handler import AlertHandler, Handled
from stream_processors.control.sinks import AlertSink, fan_out

__all__ = ["AlertRoutingRunner"]


class AlertRoutingRunner:
    """Control plane, embedded: polls alerts, sends what the handler returns, feeds the alert sinks."""

    def __init__(self, handler: AlertHandler, source: Source, sink: Sink, sinks: Sequence[AlertSink]) -> None:
        self.handler, self.source, self.sink, self.sinks = handler, source, sink, list(sinks)

    def run_once(self, timeout: float = 0.0) -> int:
        records = self.source.poll(1000, timeout)
        for rec in records:
            self.handle(rec)
        if records:
            self.sink.flush()
            self.source.commit()
        return len(records)

    def handle(self, rec: Record) -> Handled:
        handled = self.handler.handle(rec)
        for note in handled.notes:
            fan_out(self.sinks, note)
        for out in handled.outputs:
            self.sink.send(out.topic, out.key, out.value, out.timestamp)
        return handled
