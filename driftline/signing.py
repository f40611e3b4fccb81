"""Signed webhook deliveries: the headers a sender adds and the check a receiver runs.

Every webhook POST carries ``X-Driftline-Timestamp`` (unix seconds) and
``X-Driftline-Signature: v1=<hex HMAC-SHA256 of "<timestamp>.<raw body>">`` keyed with
``routing.webhook_secret``; the timestamp inside the signed text stops an old delivery from being
replayed. A receiver passes the raw body bytes (before any JSON parsing) and the request headers
to :func:`verify`, which raises :class:`SignatureError` unless both are genuine and fresh:

>>> secret = "0123456789abcdef0123456789abcdef"
>>> body = b'{"text": "data drift on income"}'
>>> headers = sign(secret, body, timestamp=1_700_000_000)
>>> headers["X-Driftline-Timestamp"]
'1700000000'
>>> verify(secret, body, headers, now=1_700_000_060)  # a minute later: accepted
>>> verify(secret, body + b" ", headers, now=1_700_000_060)
Traceback (most recent call last):
...
driftline.signing.SignatureError: bad signature: the body or the secret differs from the sender's
>>> verify(secret, body, headers, now=1_700_000_000 + 3600)
Traceback (most recent call last):
...
driftline.signing.SignatureError: stale timestamp: signed 3600 s ago, more than the 300 s tolerated

Header names are matched case-insensitively, so ``dict(handler.headers)`` from :mod:`http.server`
(or a web framework's header mapping) can be passed as is. The signature header may list several
``v1=`` values separated by commas (a sender rotating its secret); one match is enough.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from typing import Final

from driftline.errors import DriftlineError

__all__ = [
    "DELIVERY_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "SignatureError",
    "sign",
    "verify",
]

TIMESTAMP_HEADER: Final = "X-Driftline-Timestamp"
SIGNATURE_HEADER: Final = "X-Driftline-Signature"
DELIVERY_HEADER: Final = "X-Driftline-Delivery"
"""The alert id, so a receiver can drop a delivery it has handled (the id is also in the signed body)."""

_SCHEME: Final = "v1"


class SignatureError(DriftlineError):
    """A webhook delivery failed verification; the message says why (never the secret or the body)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _key(secret: str | bytes) -> bytes:
    key = secret.encode() if isinstance(secret, str) else secret
    if not key:
        raise ValueError("secret: an empty key signs nothing; use routing.webhook_secret")
    return key


def _digest(key: bytes, timestamp: int, body: bytes) -> str:
    return hmac.new(key, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def sign(secret: str | bytes, body: bytes, timestamp: int) -> dict[str, str]:
    """The timestamp and signature headers for ``body`` sent at ``timestamp`` (unix seconds)."""
    return {
        TIMESTAMP_HEADER: str(int(timestamp)),
        SIGNATURE_HEADER: f"{_SCHEME}={_digest(_key(secret), int(timestamp), body)}",
    }


def _header(headers: Mapping[str, str], name: str) -> str:
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted and value:
            return value
    raise SignatureError(f"missing header {name}")


def _signatures(header: str) -> list[bytes]:
    found = []
    for part in header.split(","):
        scheme, _, value = part.strip().partition("=")
        if scheme == _SCHEME and value:
            found.append(value.strip().encode("utf-8", "replace"))
    if not found:
        raise SignatureError(f"{SIGNATURE_HEADER} has no {_SCHEME}= signature")
    return found


def verify(
    secret: str | bytes,
    body: bytes,
    headers: Mapping[str, str],
    tolerance_s: float = 300,
    now: float | None = None,
) -> None:
    """Returns if ``headers`` sign ``body`` with ``secret`` within ``tolerance_s`` seconds of
    ``now`` (default: the clock), either way; raises :class:`SignatureError` with the reason
    otherwise. Signatures are compared in constant time."""
    raw_ts = _header(headers, TIMESTAMP_HEADER).strip()
    given = _signatures(_header(headers, SIGNATURE_HEADER))
    if not (raw_ts.isascii() and raw_ts.isdigit() and len(raw_ts) <= 12):
        raise SignatureError(f"malformed {TIMESTAMP_HEADER}: expected unix seconds")
    timestamp = int(raw_ts)
    age = (time.time() if now is None else now) - timestamp
    if age > tolerance_s:
        raise SignatureError(
            f"stale timestamp: signed {age:.0f} s ago, more than the {tolerance_s:.0f} s tolerated"
        )
    if -age > tolerance_s:
        raise SignatureError(
            f"future timestamp: signed {-age:.0f} s ahead, more than the {tolerance_s:.0f} s tolerated"
        )
    expected = _digest(_key(secret), timestamp, body).encode()
    # compare against every candidate (no early exit), each in constant time
    matches = [hmac.compare_digest(expected, candidate) for candidate in given]
    if not any(matches):
        raise SignatureError("bad signature: the body or the secret differs from the sender's")
