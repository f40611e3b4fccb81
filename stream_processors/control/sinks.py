"""Alert sinks: where a delivered alert goes besides the notifications topic, chosen by name.

``routing.sinks`` names the sinks (``DRIFTLINE_ROUTING__SINKS='["log", "webhook"]'``);
:func:`build_sinks` turns the names into sinks through the explicit :data:`SINKS` registry and
fails at start-up on an unknown name or a missing setting. A new sink (Slack, Alertmanager) is
one class with a ``from_settings`` constructor and one entry in :data:`SINKS`. The webhook sink
signs every POST (:mod:`driftline.signing`) and names its URL only as :func:`redact_url` shows it.

>>> from driftline.config import RoutingSettings
>>> [type(s).__name__ for s in build_sinks(RoutingSettings())]
['LogSink']
>>> build_sinks(RoutingSettings(sinks=("log", "pager")))
Traceback (most recent call last):
...
driftline.errors.ConfigError: routing.sinks: unknown sink 'pager'; valid names: log, topic, webhook
>>> build_sinks(RoutingSettings(sinks=("webhook",)))  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
driftline.errors.ConfigError: routing.sinks includes 'webhook', which needs routing.webhook_url: ...
"""

from __future__ import annotations

import json
import logging
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any, Final, Protocol, TypeVar

from pydantic import SecretStr

from driftline.config import RoutingSettings
from driftline.contracts import Alert, encode
from driftline.errors import ConfigError
from driftline.signing import DELIVERY_HEADER, sign
from driftline.transport import Sink

__all__ = [
    "SINKS",
    "AlertSink",
    "LogSink",
    "SinkFactory",
    "TopicSink",
    "WebhookSink",
    "build_sinks",
    "fan_out",
    "redact_url",
]

log = logging.getLogger(__name__)
T = TypeVar("T")


class AlertSink(Protocol):
    """Delivers one routed alert somewhere people (or their tools) will see it."""

    def deliver(self, alert: Alert) -> None: ...


SinkFactory = Callable[[RoutingSettings, Sink | None], AlertSink]
"""Builds a sink from the routing settings and the runner's transport (``None``: the runner has none)."""


_MAKE_SECRET: Final = 'python -c "import secrets; print(secrets.token_hex(32))"'
_SECRET_HINT: Final = (
    f"a key of 32+ characters, e.g. {_MAKE_SECRET}; the receiver checks deliveries with the same key "
    "(driftline.signing.verify)"
)


def _missing(key: str, sink: str, hint: str = "") -> str:
    return (
        f"routing.sinks includes {sink!r}, which needs routing.{key}: "
        f"set DRIFTLINE_ROUTING__{key.upper()}{f' to {hint}' if hint else ''}"
    )


def _required(value: T | None, key: str, sink: str, hint: str = "") -> T:
    empty = isinstance(value, SecretStr) and not value.get_secret_value()
    if value is None or value == "" or empty:
        raise ConfigError(_missing(key, sink, hint))
    return value


class LogSink:
    """Delivers alerts to the log (and to a list, for reports and tests)."""

    def __init__(self) -> None:
        self.delivered: list[Alert] = []

    @classmethod
    def from_settings(cls, routing: RoutingSettings, transport: Sink | None) -> LogSink:
        return cls()

    def deliver(self, alert: Alert) -> None:
        self.delivered.append(alert)
        log.warning(
            "ALERT %s %s v%s %s: %s",
            alert.type,
            alert.model,
            alert.model_version,
            alert.feature or "-",
            alert.message,
        )


class TopicSink:
    """Publishes delivered alerts to one more topic (``routing.sink_topic``), e.g. for an on-call bridge."""

    def __init__(self, sink: Sink, topic: str) -> None:
        self.sink, self.topic = sink, topic

    @classmethod
    def from_settings(cls, routing: RoutingSettings, transport: Sink | None) -> TopicSink:
        topic = _required(routing.sink_topic, "sink_topic", "topic")
        if transport is None:
            raise ConfigError("routing.sinks includes 'topic', but this runner has nothing to publish with")
        return cls(transport, topic)

    def deliver(self, alert: Alert) -> None:
        self.sink.send(self.topic, alert.model.encode(), encode(alert), alert.detected_at_time)


_LOOPBACK: Final = frozenset({"127.0.0.1", "::1", "localhost"})


def redact_url(url: str) -> str:
    """``<scheme>://<host>[:port]/…``, the only part of a webhook URL that is logged or printed:
    its path, query and user info may hold the hook's token.

    >>> redact_url("https://hooks.example.com/services/T0/B0/XXXX?token=abc")
    'https://hooks.example.com/…'
    >>> redact_url("http://user:pw@[::1]:8080/hook")
    'http://[::1]:8080/…'
    """
    try:
        parts = urllib.parse.urlsplit(url)
        host, port = parts.hostname or "?", parts.port
    except ValueError:
        return "<malformed URL>"
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme or '?'}://{host}{f':{port}' if port else ''}/…"


def _check_url(url: str, allow_http_localhost: bool) -> None:
    """Raises :class:`ConfigError` naming ``routing.webhook_url`` (never the URL) unless ``url`` is
    https, or plain http to a loopback host with ``routing.webhook_allow_http_localhost``."""
    fix = (
        "set DRIFTLINE_ROUTING__WEBHOOK_URL to an https:// URL (plain http:// is accepted only to "
        "127.0.0.1, ::1 or localhost, with routing.webhook_allow_http_localhost=true)"
    )
    try:
        parts = urllib.parse.urlsplit(url)
        host, _ = parts.hostname, parts.port
    except ValueError:
        raise ConfigError(f"routing.webhook_url is not a valid URL (bad host or port): {fix}") from None
    if (
        parts.scheme not in ("https", "http")
        or not host
        or any(c.isspace() or not c.isprintable() for c in url)
    ):
        raise ConfigError(f"routing.webhook_url must be an https://HOST/... URL: {fix}")
    if "@" in parts.netloc:
        raise ConfigError(
            "routing.webhook_url carries user:password@, which is not sent: put the hook's token in its "
            "path or query (set DRIFTLINE_ROUTING__WEBHOOK_URL)"
        )
    if parts.scheme == "https" or (host in _LOOPBACK and allow_http_localhost):
        return
    if host in _LOOPBACK:
        raise ConfigError(
            f"routing.webhook_url (webhook {redact_url(url)}) is plain http: for local testing set "
            "routing.webhook_allow_http_localhost=true "
            "(DRIFTLINE_ROUTING__WEBHOOK_ALLOW_HTTP_LOCALHOST=true), otherwise use https://"
        )
    raise ConfigError(
        f"routing.webhook_url (webhook {redact_url(url)}) is plain http to a non-loopback host, which "
        f"would send alerts and signatures in clear text: {fix}"
    )


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect would send the signed delivery somewhere nobody configured: a 3xx is a failure."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class WebhookSink:
    """POSTs the alert JSON (Slack/Alertmanager bridges accept it) to an https URL, signed with
    :func:`driftline.signing.sign` and carrying the alert id in ``X-Driftline-Delivery``.

    Synchronous with a timeout; never raises (a failure is counted in :attr:`failures` and logged)
    and never names more of the URL than :func:`redact_url` shows, in logs, errors or its repr.
    """

    def __init__(
        self,
        url: str | SecretStr,
        secret: str | SecretStr,
        *,
        timeout: float = 2.0,
        allow_http_localhost: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._url = url if isinstance(url, SecretStr) else SecretStr(url)
        self._secret = secret if isinstance(secret, SecretStr) else SecretStr(secret)
        _check_url(self._url.get_secret_value(), allow_http_localhost)
        if not self._secret.get_secret_value():
            raise ConfigError(_missing("webhook_secret", "webhook", _SECRET_HINT))
        self.target = redact_url(self._url.get_secret_value())
        self.timeout, self._clock = timeout, clock
        self.failures = 0
        self._opener = urllib.request.build_opener(_NoRedirects)

    @classmethod
    def from_settings(cls, routing: RoutingSettings, transport: Sink | None) -> WebhookSink:
        url = _required(routing.webhook_url, "webhook_url", "webhook")
        secret = _required(routing.webhook_secret, "webhook_secret", "webhook", _SECRET_HINT)
        return cls(url, secret, allow_http_localhost=routing.webhook_allow_http_localhost)

    def __repr__(self) -> str:
        return f"WebhookSink(webhook {self.target})"

    def deliver(self, alert: Alert) -> None:
        body = json.dumps({"text": alert.message, "alert": json.loads(encode(alert))}).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "driftline-webhook",
            DELIVERY_HEADER: alert.alert_id,
            **sign(self._secret.get_secret_value(), body, int(self._clock())),
        }
        req = urllib.request.Request(self._url.get_secret_value(), data=body, headers=headers, method="POST")
        try:
            with self._opener.open(req, timeout=self.timeout) as resp:
                status = resp.status
                resp.read(65536)
        except Exception as exc:  # a sink never raises into the router
            self.failures += 1
            log.error(
                "webhook %s: delivery of alert %s failed: %s", self.target, alert.alert_id, self._why(exc)
            )
            return
        log.debug("webhook %s: alert %s delivered (HTTP %s)", self.target, alert.alert_id, status)

    def _why(self, exc: Exception) -> str:
        """The failure's reason with anything of the URL beyond its host, and the secret, cut out."""
        if isinstance(exc, urllib.error.HTTPError):
            text = f"HTTP {exc.code}"
        elif isinstance(exc, urllib.error.URLError) and isinstance(exc.reason, BaseException):
            text = f"{type(exc.reason).__name__}: {exc.reason}"
        else:
            text = f"{type(exc).__name__}: {exc}"
        url = self._url.get_secret_value()
        parts = urllib.parse.urlsplit(url)
        tail = url[len(f"{parts.scheme}://{parts.netloc}") :]
        pieces = [url, self._secret.get_secret_value(), tail, parts.path, parts.query, parts.fragment]
        pieces += [p for p in re.split(r"[/?&=#;]", tail) if len(p) >= 4]
        for secret in sorted(pieces, key=len, reverse=True):
            if len(secret) > 1:
                text = text.replace(secret, "…")
        return text[:300]


SINKS: Final[dict[str, SinkFactory]] = {
    "log": LogSink.from_settings,
    "topic": TopicSink.from_settings,
    "webhook": WebhookSink.from_settings,
}
"""The alert sinks by the name ``routing.sinks`` uses."""


def build_sinks(routing: RoutingSettings, transport: Sink | None = None) -> list[AlertSink]:
    """The sinks ``routing.sinks`` names, each once, in order; a bad name or a missing setting
    raises :class:`ConfigError` before any sink is built."""
    unknown = [name for name in routing.sinks if name not in SINKS]
    if unknown:
        names = ", ".join(repr(n) for n in unknown)
        raise ConfigError(
            f"routing.sinks: unknown sink{'s' if len(unknown) > 1 else ''} {names}; "
            f"valid names: {', '.join(sorted(SINKS))}"
        )
    return [SINKS[name](routing, transport) for name in dict.fromkeys(routing.sinks)]


def fan_out(sinks: Iterable[AlertSink], alert: Alert) -> None:
    """Delivers ``alert`` to every sink; a failing sink is logged and does not stop the others
    (the alert is on the notifications topic whatever a sink does)."""
    for sink in sinks:
        try:
            sink.deliver(alert)
        except Exception:
            log.exception("alert sink %s failed on alert %s", type(sink).__name__, alert.alert_id)
