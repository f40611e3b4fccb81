"""Webhook signing: what ``sign`` produces and everything ``verify`` rejects."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from driftline.errors import DriftlineError
from driftline.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, SignatureError, sign, verify

SECRET = "k" * 32
BODY = b'{"text": "concept drift on churn", "alert": {"alert_id": "a1"}}'
T = 1_700_000_000


def test_sign_then_verify_round_trips_with_str_or_bytes_keys() -> None:
    headers = sign(SECRET, BODY, T)
    assert set(headers) == {TIMESTAMP_HEADER, SIGNATURE_HEADER}
    assert headers[TIMESTAMP_HEADER] == str(T)
    verify(SECRET, BODY, headers, now=T)
    verify(SECRET.encode(), BODY, headers, now=T + 299)
    verify(SECRET, BODY, sign(SECRET.encode(), BODY, T), now=T)


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body_in_hex() -> None:
    # the documented scheme, so a receiver in another language can check it without driftline
    expected = hmac.new(SECRET.encode(), f"{T}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, BODY, T)[SIGNATURE_HEADER] == f"v1={expected}"


def test_header_names_match_case_insensitively() -> None:
    lowered = {k.lower(): v for k, v in sign(SECRET, BODY, T).items()}
    verify(SECRET, BODY, lowered, now=T)


def test_one_matching_v1_among_several_is_enough() -> None:
    headers = sign(SECRET, BODY, T)
    other = sign("o" * 32, BODY, T)[SIGNATURE_HEADER]
    rotating = {**headers, SIGNATURE_HEADER: f"{other}, {headers[SIGNATURE_HEADER]}"}
    verify(SECRET, BODY, rotating, now=T)


def _rejected(headers: dict[str, str], *, body: bytes = BODY, secret: str = SECRET, now: float = T) -> str:
    with pytest.raises(SignatureError) as err:
        verify(secret, body, headers, now=now)
    assert isinstance(err.value, DriftlineError) and err.value.reason == str(err.value)
    return err.value.reason


def test_a_tampered_body_or_another_secret_is_a_bad_signature() -> None:
    headers = sign(SECRET, BODY, T)
    assert _rejected(headers, body=BODY.replace(b"churn", b"chirn")).startswith("bad signature")
    assert _rejected(headers, body=BODY + b"\n").startswith("bad signature")
    assert _rejected(headers, secret="x" * 32).startswith("bad signature")


def test_a_forged_signature_is_rejected_however_close_to_the_real_one() -> None:
    headers = sign(SECRET, BODY, T)
    real = headers[SIGNATURE_HEADER].removeprefix("v1=")
    flip = {"0": "1"}.get(real[-1], "0")
    forgeries = [
        "0" * 64,  # nothing in common
        real[:-1] + flip,  # all but the last character
        real[:32],  # a prefix
        real + "00",  # longer
        real.upper(),  # not the hex the sender wrote
        "é" * 64,  # not even ASCII
    ]
    for forged in forgeries:
        assert _rejected({**headers, SIGNATURE_HEADER: f"v1={forged}"}).startswith("bad signature")


def test_the_timestamp_is_signed_too() -> None:
    headers = sign(SECRET, BODY, T)
    moved = {**headers, TIMESTAMP_HEADER: str(T + 1)}  # a replay with a fresh timestamp
    assert _rejected(moved, now=T + 1).startswith("bad signature")


@pytest.mark.parametrize(
    ("now", "reason"),
    [
        (T + 301, "stale timestamp: signed 301 s ago"),
        (T + 86_400, "stale timestamp"),
        (T - 301, "future timestamp: signed 301 s ahead"),
    ],
)
def test_stale_and_future_timestamps_are_rejected_even_when_signed(now: float, reason: str) -> None:
    assert _rejected(sign(SECRET, BODY, T), now=now).startswith(reason)


def test_the_tolerance_is_a_parameter() -> None:
    headers = sign(SECRET, BODY, T)
    verify(SECRET, BODY, headers, tolerance_s=3600, now=T + 3000)
    with pytest.raises(SignatureError, match="stale"):
        verify(SECRET, BODY, headers, tolerance_s=10, now=T + 11)


@pytest.mark.parametrize("missing", [TIMESTAMP_HEADER, SIGNATURE_HEADER])
def test_a_missing_or_empty_header_is_named(missing: str) -> None:
    headers = sign(SECRET, BODY, T)
    without = {k: v for k, v in headers.items() if k != missing}
    assert _rejected(without) == f"missing header {missing}"
    assert _rejected({**headers, missing: ""}) == f"missing header {missing}"
    assert _rejected({}).startswith("missing header")


@pytest.mark.parametrize("value", ["", "sha1=abc", "v0=abc", "v1="])
def test_a_signature_header_without_a_v1_value_is_rejected(value: str) -> None:
    headers = {**sign(SECRET, BODY, T), SIGNATURE_HEADER: value or " "}
    assert _rejected(headers) == f"{SIGNATURE_HEADER} has no v1= signature"


@pytest.mark.parametrize("value", ["1700000000.5", "-1", "soon", "1" * 40, "１７"])
def test_a_malformed_timestamp_is_rejected(value: str) -> None:
    headers = {**sign(SECRET, BODY, T), TIMESTAMP_HEADER: value}
    assert _rejected(headers).startswith(f"malformed {TIMESTAMP_HEADER}")


def test_errors_never_carry_the_secret_or_the_body() -> None:
    headers = sign(SECRET, BODY, T)
    for reason in (
        _rejected(headers, secret="s" * 32),
        _rejected(headers, now=T + 1000),
        _rejected({TIMESTAMP_HEADER: str(T)}),
    ):
        assert SECRET not in reason and "s" * 32 not in reason and "churn" not in reason


def test_an_empty_secret_signs_nothing() -> None:
    with pytest.raises(ValueError, match="routing.webhook_secret"):
        sign("", BODY, T)
