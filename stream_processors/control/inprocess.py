"""The control plane in process (embedded mode): alerts, metrics and model updates in
(:attr:`~stream_processors.control.handler.AlertHandler.inputs`), notifications, incidents, retrain
requests and dead letters out, through the same handler as the faust agent."""

from __future__ import annotations

from collections.abc import Sequence

from driftline.transport import Record, Sink, Source
from stream_processors.control.handler import AlertHandler, Handled
from stream_processors.control.sinks import AlertSink, fan_out
from stream_processors.control.store import AlertStore

__all__ = ["AlertRoutingRunner"]


class AlertRoutingRunner:
    """Control plane, embedded: polls alerts, sends what the handler returns, feeds the alert sinks."""

    def __init__(
        self,
        handler: AlertHandler,
        source: Source,
        sink: Sink,
        sinks: Sequence[AlertSink],
        store: AlertStore | None = None,
    ) -> None:
        self.handler, self.source, self.sink, self.sinks = handler, source, sink, list(sinks)
        self.store, self._actions = store, 0

    def run_once(self, timeout: float = 0.0) -> int:
        if self.store is not None:  # on-call's acks and silences since the last pass
            fresh = self.store.action_records()[self._actions :]
            self._actions += len(fresh)
            for value in fresh:
                self.handle(Record(self.handler.topics.alert_actions, value))
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
        if self.store is not None:
            notes = self.handler.topics.notifications
            self.store.append_notifications(o.value for o in handled.outputs if o.topic == notes)
        return handled
