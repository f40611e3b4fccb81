"""The HTTP alert sinks: a signed generic webhook, Slack (Block Kit) and Alertmanager v2.

Each renders a notification (:mod:`~stream_processors.control.render`) into a request body and posts
it with httpx. :meth:`HttpSink.post` raises :class:`DeliveryFailed` (saying whether a retry can
help); the runners never call it on their event loop: they put bodies in the
:class:`~stream_processors.control.outbox.Outbox`, whose dispatcher thread posts, retries with backoff
and survives restarts. :meth:`HttpSink.deliver` posts at once (tools and tests), never raises and
counts failures. Every request carries the notification's id in ``X-Driftline-Delivery`` (the
idempotency key); nothing beyond :func:`redact_url` of a URL is ever logged or shown.
"""

from __future__ import annotations

import json
import logging
import re
import time
import urllib.parse
from collections.abc import Callable
from typing import ClassVar, Final, TypeVar

import httpx
from pydantic import SecretStr

from driftline.config import RoutingSettings
from driftline.contracts import Alert, Incident, Notification, RetrainOutcome, encode
from driftline.errors import ConfigError, DriftlineError
from driftline.signing import DELIVERY_HEADER, sign
from driftline.transport import Sink
from stream_processors.control.render import alertmanager_alerts, notification_text, slack_payload

__all__ = [
    "AlertmanagerSink",
    "DeliveryFailed",
    "HttpSink",
    "SlackSink",
    "WebhookSink",
    "notification_id",
    "redact_url",
]

log = logging.getLogger("stream_processors.control.sinks")
T = TypeVar("T")


class DeliveryFailed(DriftlineError):
    """A POST that did not succeed; ``retry``: whether trying again later can help (not after a 4xx)."""

    def __init__(self, reason: str, *, retry: bool = True) -> None:
        super().__init__(reason)
        self.retry = retry


def notification_id(note: Notification) -> str:
    """The idempotency key of a notification: the same for every copy of it, unique otherwise."""
    if isinstance(note, Incident):
        return note.notification_id
    if isinstance(note, RetrainOutcome):
        return f"retrain-{note.request_id}-{note.status}"
    return note.alert_id


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


def _check_url(url: str, allow_http_localhost: bool, key: str = "webhook_url") -> None:
    """Raises :class:`ConfigError` naming ``routing.<key>`` (never the URL) unless ``url`` is
    https, or plain http to a loopback host with ``routing.webhook_allow_http_localhost``."""
    env = f"DRIFTLINE_ROUTING__{key.upper()}"
    fix = (
        f"set {env} to an https:// URL (plain http:// is accepted only to "
        "127.0.0.1, ::1 or localhost, with routing.webhook_allow_http_localhost=true)"
    )
    try:
        parts = urllib.parse.urlsplit(url)
        host, _ = parts.hostname, parts.port
    except ValueError:
        raise ConfigError(f"routing.{key} is not a valid URL (bad host or port): {fix}") from None
    if (
        parts.scheme not in ("https", "http")
        or not host
        or any(c.isspace() or not c.isprintable() for c in url)
    ):
        raise ConfigError(f"routing.{key} must be an https://HOST/... URL: {fix}")
    if "@" in parts.netloc:
        raise ConfigError(
            f"routing.{key} carries user:password@, which is not sent: put the hook's token in its "
            f"path or query (set {env})"
        )
    if parts.scheme == "https" or (allow_http_localhost and (host in _LOOPBACK or key == "alertmanager_url")):
        return
    if host in _LOOPBACK:
        raise ConfigError(
            f"routing.{key} (webhook {redact_url(url)}) is plain http: for local testing set "
            "routing.webhook_allow_http_localhost=true "
            "(DRIFTLINE_ROUTING__WEBHOOK_ALLOW_HTTP_LOCALHOST=true), otherwise use https://"
        )
    raise ConfigError(
        f"routing.{key} (webhook {redact_url(url)}) is plain http to a non-loopback host, which "
        f"would send alerts and signatures in clear text: {fix}"
    )


class HttpSink:
    """POSTs notifications to one URL; subclasses say what the body is and which headers it has."""

    name: ClassVar[str] = "http"
    url_key: ClassVar[str] = "webhook_url"
    https_only: ClassVar[bool] = True  # False: plain http anywhere (an in-cluster Alertmanager)

    def __init__(self, url: str | SecretStr, *, timeout: float = 2.0, allow_http_localhost: bool = False):
        self._url = url if isinstance(url, SecretStr) else SecretStr(url)
        _check_url(self._url.get_secret_value(), allow_http_localhost or not self.https_only, self.url_key)
        self.target = redact_url(self._url.get_secret_value())
        self.timeout = timeout
        self.failures = 0
        self._client: httpx.Client | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(webhook {self.target})"

    def body(self, note: Notification) -> bytes | None:
        """The request body for ``note``; None: this sink has nothing to say about it."""
        raise NotImplementedError

    def headers(self, body: bytes, key: str) -> dict[str, str]:
        return {"Content-Type": "application/json", "User-Agent": "driftline", DELIVERY_HEADER: key}

    def endpoint(self) -> str:
        return self._url.get_secret_value()

    def post(self, body: bytes, key: str, client: httpx.Client | None = None) -> None:
        """One POST; raises :class:`DeliveryFailed` with a reason that names no secret."""
        if client is None:
            client = self._client = self._client or httpx.Client(follow_redirects=False)
        try:
            resp = client.post(
                self.endpoint(), content=body, headers=self.headers(body, key), timeout=self.timeout
            )
        except Exception as exc:
            raise DeliveryFailed(self._why(exc)) from None
        if resp.status_code >= 300:
            retry = resp.status_code >= 500 or resp.status_code in (408, 425, 429) or resp.status_code < 400
            raise DeliveryFailed(f"HTTP {resp.status_code}", retry=retry)

    def deliver(self, note: Notification) -> None:
        """Posts ``note`` now (no outbox); never raises: a failure is counted and logged."""
        body = self.body(note)
        if body is None:
            return
        key = notification_id(note)
        try:
            self.post(body, key)
        except DeliveryFailed as exc:
            self.failures += 1
            log.error("%s %s: delivery of %s %s failed: %s", self.name, self.target, _what(note), key, exc)
            return
        log.debug("%s %s: %s %s delivered", self.name, self.target, _what(note), key)

    def _why(self, exc: Exception) -> str:
        """The failure's reason with anything of the URL beyond its host, and any secret, cut out."""
        text = f"{type(exc).__name__}: {exc}"
        url = self._url.get_secret_value()
        parts = urllib.parse.urlsplit(url)
        tail = url[len(f"{parts.scheme}://{parts.netloc}") :]
        pieces = [url, *self._secrets(), tail, parts.path, parts.query, parts.fragment]
        pieces += [p for p in re.split(r"[/?&=#;]", tail) if len(p) >= 4]
        for secret in sorted(pieces, key=len, reverse=True):
            if len(secret) > 1:
                text = text.replace(secret, "…")
        return text[:300]

    def _secrets(self) -> list[str]:
        return []


def _what(note: Notification) -> str:
    return (
        "incident"
        if isinstance(note, Incident)
        else "retrain outcome"
        if isinstance(note, RetrainOutcome)
        else "alert"
    )


class WebhookSink(HttpSink):
    """The generic webhook: ``{"text": ..., "<kind>": <the notification's JSON>}`` (``alert``,
    ``incident`` or ``retrain``), signed with :func:`driftline.signing.sign` at each attempt."""

    name = "webhook"

    def __init__(
        self,
        url: str | SecretStr,
        secret: str | SecretStr,
        *,
        timeout: float = 2.0,
        allow_http_localhost: bool = False,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(url, timeout=timeout, allow_http_localhost=allow_http_localhost)
        self._secret = secret if isinstance(secret, SecretStr) else SecretStr(secret)
        if not self._secret.get_secret_value():
            raise ConfigError(_missing("webhook_secret", "webhook", _SECRET_HINT))
        self._clock = clock

    @classmethod
    def from_settings(cls, routing: RoutingSettings, transport: Sink | None) -> WebhookSink:
        url = _required(routing.webhook_url, "webhook_url", "webhook")
        secret = _required(routing.webhook_secret, "webhook_secret", "webhook", _SECRET_HINT)
        return cls(url, secret, allow_http_localhost=routing.webhook_allow_http_localhost)

    def body(self, note: Notification) -> bytes:
        kind = (
            "incident"
            if isinstance(note, Incident)
            else "retrain"
            if isinstance(note, RetrainOutcome)
            else "alert"
        )
        return json.dumps({"text": notification_text(note), kind: json.loads(encode(note))}).encode()

    def headers(self, body: bytes, key: str) -> dict[str, str]:
        signed = sign(self._secret.get_secret_value(), body, int(self._clock()))
        return {**super().headers(body, key), "User-Agent": "driftline-webhook", **signed}

    def _secrets(self) -> list[str]:
        return [self._secret.get_secret_value()]


class SlackSink(HttpSink):
    """A Slack incoming webhook: incidents and retrain outcomes in Block Kit (raw alerts are left to
    their incident)."""

    name = "slack"
    url_key = "slack_webhook_url"

    @classmethod
    def from_settings(cls, routing: RoutingSettings, transport: Sink | None) -> SlackSink:
        url = _required(routing.slack_webhook_url, "slack_webhook_url", "slack")
        return cls(url, allow_http_localhost=routing.webhook_allow_http_localhost)

    def body(self, note: Notification) -> bytes | None:
        if isinstance(note, Alert):
            return None
        return json.dumps(slack_payload(note)).encode()


class AlertmanagerSink(HttpSink):
    """Prometheus Alertmanager v2: each incident revision as an alert (``POST /api/v2/alerts``);
    a resolved incident sends ``endsAt``. Alertmanager groups and deduplicates by the labels."""

    name = "alertmanager"
    url_key = "alertmanager_url"
    https_only = False

    @classmethod
    def from_settings(cls, routing: RoutingSettings, transport: Sink | None) -> AlertmanagerSink:
        url = _required(routing.alertmanager_url, "alertmanager_url", "alertmanager")
        return cls(url, allow_http_localhost=routing.webhook_allow_http_localhost)

    def endpoint(self) -> str:
        return self._url.get_secret_value().rstrip("/") + "/api/v2/alerts"

    def body(self, note: Notification) -> bytes | None:
        if not isinstance(note, Incident):
            return None
        return json.dumps(alertmanager_alerts(note)).encode()
