"""One alert record in, the messages to send out: the control plane's per-record policy.

Both runners -- :class:`~stream_processors.control.inprocess.AlertRoutingRunner` (embedded) and the
faust agent (:mod:`stream_processors.control.faust_app`) -- call :meth:`AlertHandler.handle` and
send what it returns, so an alert is treated the same way under both:

* not a valid :class:`~driftline.contracts.Alert` -> a :class:`~driftline.contracts.DeadLetter`
  (stage ``"route"``, the reason, the original bytes and where they came from) on ``topics.dlq``;
* delivered by the router -> the alert on ``topics.notifications`` (and to the alert sinks, which
  the runner calls with :attr:`Handled.delivered`);
* an alert type that retrains -> a :class:`~driftline.contracts.RetrainRequest` on ``topics.retrain``;
* a duplicate or an alert within its cooldown -> nothing;
* the same record read again after a restart (its offset was not committed) -> the messages its first
  reading sent, again (the same ids: readers drop copies by id), but not to the alert sinks, which were
  called the first time (see :mod:`~stream_processors.control.routing`).

The handler does no I/O; its only state is the router's (per cooldown key: the alert ids decided,
where they were read, when the key last fired).

>>> from driftline.config import RoutingSettings, Topics
>>> from driftline.transport import Record
>>> handler = AlertHandler(AlertRouter(RoutingSettings()), Topics())
>>> [(o.topic, o.key) for o in handler.handle(Record("driftline.alerts", b"oops", offset=3)).outputs]
[('driftline.dlq', None)]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from driftline.config import Topics
from driftline.contracts import Alert, DeadLetter, decode, encode
from driftline.errors import InvalidEvent
from driftline.transport import Record
from stream_processors.control.routing import AlertRouter, Routed

__all__ = ["STAGE", "AlertHandler", "Handled", "Output"]

STAGE = "route"  # the dead letters' stage


class Output(NamedTuple):
    """One message to send: the same shape as :meth:`driftline.transport.Sink.send`'s arguments."""

    topic: str
    key: bytes | None
    value: bytes
    timestamp: float | None


@dataclass(frozen=True)
class Handled:
    """What became of one alert record."""

    outputs: list[Output] = field(default_factory=list)
    routed: Routed | None = None  # None: the record was not a valid alert
    dead_letter: DeadLetter | None = None

    @property
    def delivered(self) -> Alert | None:
        """The alert to hand to the alert sinks, if the router delivered it (not again on a replay)."""
        r = self.routed
        return r.alert if r is not None and r.deliver and not r.replayed else None


class AlertHandler:
    """Decodes, routes and turns one alert record into the messages to send."""

    def __init__(self, router: AlertRouter, topics: Topics) -> None:
        self.router, self.topics = router, topics

    def handle(self, record: Record) -> Handled:
        try:
            alert = decode(Alert, record.value)
        except InvalidEvent as exc:
            dead = DeadLetter.of_record(record, exc, STAGE)
            return Handled([Output(self.topics.dlq, record.key, encode(dead), None)], dead_letter=dead)
        at = (record.partition, record.offset) if record.offset >= 0 else None  # None: read from nowhere
        routed = self.router.route(alert, at=at)
        key, ts = alert.model.encode(), alert.detected_at_time  # keyed by model: one model's stay in order
        outputs = []
        if routed.deliver:
            outputs.append(Output(self.topics.notifications, key, encode(alert), ts))
        if routed.retrain is not None:
            outputs.append(Output(self.topics.retrain, key, encode(routed.retrain), ts))
        return Handled(outputs, routed)
