"""The native decoder reads a batch's features into exactly the columns the general path builds (msgspec,
then :func:`~stream_processors.core.schema.columns`), and names every record it cannot read that way."""

from __future__ import annotations

import json
import os
import random

import msgspec
import numpy as np
import pytest

from driftline import native
from driftline.contracts import Prediction
from driftline.errors import ConfigError
from stream_processors.core.schema import Kind, PredictionHead, columns, native_columns

if not native.built():  # .ci/run builds it (cargo is there): CI never skips
    if os.environ.get("CI"):
        pytest.fail("the native decoder was not built: is cargo on the PATH of pip install?")
    pytest.skip("the native decoder is not built (no Rust toolchain at install)", allow_module_level=True)

KINDS: dict[str, Kind] = {
    "age": "numeric",
    "plan": "categorical",
    "income": "numeric",
    "region": "categorical",
    "tenure": "numeric",
}
_PRED, _HEAD = msgspec.json.Decoder(Prediction), msgspec.json.Decoder(PredictionHead)


@pytest.fixture(autouse=True)
def _on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(native.ENV, raising=False)


def _record(i: int, features: dict[str, object], **extra: object) -> bytes:
    return json.dumps(
        {
            "prediction_id": f"p{i}",
            "model": "m",
            "model_version": "1",
            "event_time": 1.0 + i,
            **extra,
            "features": features,
            "prediction": i % 2,
            "score": (i % 10) / 10,
        },
        ensure_ascii=False,  # text as UTF-8, as the SDK writes it (an escape would be declined)
    ).encode()


def _numbers(rng: random.Random) -> object:
    """A numeric feature's JSON value, of every form a serializer writes."""
    kind = rng.randrange(9)
    if kind == 0:
        return None
    if kind == 1:
        return rng.randint(-(10**18) + 1, 10**18 - 1)  # up to 18 digits: the decoder's own integers
    if kind == 2:
        return rng.choice([0, -0, 1, -1, 7])
    if kind == 3:
        return float(f"{rng.uniform(-1, 1):.{rng.randint(1, 17)}g}")
    if kind == 4:
        return rng.uniform(-1e300, 1e300)
    if kind == 5:
        return rng.choice([5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, -0.0, 0.1, 1e22])
    return rng.gauss(0, 1) * 10 ** rng.randint(-30, 30)


def _batch(n: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        feats = {
            "age": _numbers(rng),
            "plan": rng.choice(["basic", "pro", "", "é-ü ☃", None]),
            "income": _numbers(rng),
            "region": rng.choice(["north", "south", None]),
            "tenure": _numbers(rng),
        }
        extra = {"probabilities": {"a": 0.25, "b": 0.75}} if i % 5 == 0 else {}
        out.append(_record(i, feats, **extra))
    return out


def _general(raws: list[bytes]) -> dict[str, np.ndarray]:
    cols, bad = columns([_PRED.decode(r) for r in raws], KINDS)
    assert bad == []
    return cols


def _native(raws: list[bytes]) -> tuple[dict[str, np.ndarray], list[int]]:
    got = native_columns([_HEAD.decode(r) for r in raws], raws, KINDS)
    assert got is not None
    return got


def _read(raw: bytes) -> list[int]:
    """The records of ``[raw]`` the decoder did not read."""
    got = native.feature_columns([raw], list(KINDS), [k == "numeric" for k in KINDS.values()], 1024)
    assert got is not None
    return got[2]


def _assert_same(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> None:
    assert a.keys() == b.keys()
    for name, col in a.items():
        other = b[name]
        assert col.dtype == other.dtype, name
        if col.dtype == float:  # to the bit: the same bytes, NaN where missing, -0.0 kept
            assert col.tobytes() == np.ascontiguousarray(other).tobytes(), name
        else:
            assert col.tolist() == other.tolist(), name


@pytest.mark.parametrize("seed", range(6))
def test_native_columns_equal_the_general_path_to_the_bit(seed: int) -> None:
    raws = _batch(400, seed)
    got, unread = _native(raws)
    assert unread == []
    _assert_same(_general(raws), got)


def test_whitespace_field_order_and_other_fields_do_not_matter() -> None:
    feats = {"age": 41, "plan": "pro", "income": 5.5e4, "region": None, "tenure": -0.0}
    raws = [
        _record(0, feats),
        b'{ "features" : { "age" : 41 , "plan" : "pro" , "income" : 55000.0 , "region" : null , '
        b'"tenure" : -0.0 } ,\n "prediction_id":"p1","model":"m","model_version":"1","event_time":2,'
        b'"prediction":"yes","x":[1,{"y":"a\\"b"}],"score":null}',
    ]
    got, unread = _native(raws)
    assert unread == []
    _assert_same(_general(raws), got)
    assert got["age"].tolist() == [41.0, 41.0] and np.signbit(got["tenure"]).all()


@pytest.mark.parametrize(
    "feats",
    [
        {"age": 1, "plan": "a", "income": 2, "region": "n"},  # a feature missing
        {"age": 1, "plan": "a", "income": 2, "region": "n", "tenure": 3, "extra": 1},  # one too many
        {"plan": "a", "age": 1, "income": 2, "region": "n", "tenure": 3},  # another order
        {"age": True, "plan": "a", "income": 2, "region": "n", "tenure": 3},  # a boolean
        {"age": "41", "plan": "a", "income": 2, "region": "n", "tenure": 3},  # text in a numeric
        {"age": 1, "plan": 7, "income": 2, "region": "n", "tenure": 3},  # a number as a category
        {"age": 1, "plan": "a\nb", "income": 2, "region": "n", "tenure": 3},  # an escape
        {"age": 10**19, "plan": "a", "income": 2, "region": "n", "tenure": 3},  # beyond 18 digits
        {"age": 1, "plan": "x" * 1025, "income": 2, "region": "n", "tenure": 3},  # too long
        {"age": 1, "plan": "a", "income": [2], "region": "n", "tenure": 3},  # a list
    ],
)
def test_the_decoder_names_every_other_record_and_leaves_its_cells_empty(feats: dict[str, object]) -> None:
    plain = _batch(20, 0)
    cols, unread = _native([*plain[:10], _record(99, feats), *plain[10:]])
    assert unread == [10]
    assert np.isnan(cols["age"][10]) and cols["plan"][10] is None
    others = {k: np.delete(v, 10) for k, v in cols.items()}
    _assert_same(_general(plain), others)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"prediction_id":"p","model":"m","model_version":"1","event_time":1,"prediction":1}',  # none
        b'{"prediction_id":"p","model":"m","model_version":"1","event_time":1,"prediction":1,'
        b'"features":{"age":1,"plan":"a","income":2,"region":"n","tenure":3},'
        b'"features":{"age":1,"plan":"a","income":2,"region":"n","tenure":3}}',  # twice
        b'{"prediction_id":"p","model":"m","model_version":"1","event_time":1,"prediction":1,'
        b'"features":{"age":1e400,"plan":"a","income":2,"region":"n","tenure":3}}',  # out of range
        b'{"prediction_id":"p","model":"m","model_version":"1","event_time":1,"prediction":1,'
        b'"features":{"age":1,"plan":"\xff","income":2,"region":"n","tenure":3}}',  # not UTF-8
        b'{"prediction_id":"p","model":"m","model_version":"1","event_time":1,"prediction":1,'
        b'"feat\\u0075res":{"age":1,"plan":"a","income":2,"region":"n","tenure":3}}',  # an escaped key
    ],
)
def test_records_the_decoder_cannot_judge_are_left_to_msgspec(raw: bytes) -> None:
    assert _read(raw) == [0]


def test_numbers_parse_as_msgspec_parses_them() -> None:
    rng = random.Random(11)
    texts = []
    for _ in range(20_000):
        mantissa = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 25))).lstrip("0") or "0"
        point = rng.randint(0, len(mantissa))
        frac = f"{mantissa[:point] or '0'}.{mantissa[point:]}" if point < len(mantissa) else mantissa
        exp = rng.choice(
            ["", f"e{rng.randint(-320, 300)}", f"E+{rng.randint(0, 300)}", f"e-{rng.randint(0, 30)}"]
        )
        texts.append(rng.choice(["", "-"]) + frac + exp)
    plain = [t for t in texts if "e" not in t.lower() and "." not in t and len(t.lstrip("-")) > 18]
    texts = [t for t in texts if t not in plain]  # long integers are msgspec's own (declined)
    raws = [
        b'{"features":{"age":%s,"plan":null,"income":0,"region":null,"tenure":0}}' % t.encode() for t in texts
    ]
    expect = []
    for t in texts:
        try:
            expect.append(msgspec.json.decode(t.encode(), type=float))
        except msgspec.ValidationError:
            expect.append(None)  # out of range: msgspec refuses it, the decoder declines it
    got = native.feature_columns(raws, list(KINDS), [k == "numeric" for k in KINDS.values()], 1024)
    assert got is not None
    unread = set(got[2])
    for k, want in enumerate(expect):
        if want is None:
            assert k in unread, raws[k]  # out of range: msgspec refuses it, the decoder leaves it
        else:
            assert k not in unread and got[0][0, k].tobytes() == np.float64(want).tobytes(), raws[k]
    assert 0 < len(unread) < len(raws) // 10


def test_numbers_at_the_edges_of_the_exact_fast_path_parse_as_msgspec_parses_them() -> None:
    """The decoder computes a decimal of at most 2^53 in digits and a power of ten within +-22 as one
    exact operation, and hands any other to a correctly rounded parser: both sides of each edge."""
    mantissas = ["9007199254740991", "9007199254740992", "9007199254740993", "9999999999999999999"]
    mantissas += ["1" * 19, "1" * 20, "4503599627370497", "1", "123", "0", "0000000123"]
    texts = []
    for m in mantissas:
        for point in (1, len(m) // 2, len(m)):
            frac = f"{m[:point]}.{m[point:] or '0'}" if m[:point].lstrip("0") or point == 1 else None
            for body in filter(None, (frac, f"0.{m}", f"0.000{m}", f"{m[:1]}.{m[1:]}000")):
                for e in ("", "e22", "e-22", "e23", "e-23", "E+21", "e0", "e-0", "e0000022", "e300"):
                    texts += [body + e, "-" + body + e]
    raws = [
        b'{"features":{"age":%s,"plan":null,"income":0,"region":null,"tenure":0}}' % t.encode() for t in texts
    ]
    got = native.feature_columns(raws, list(KINDS), [k == "numeric" for k in KINDS.values()], 1024)
    assert got is not None
    for k, t in enumerate(texts):
        try:
            want = msgspec.json.decode(t.encode(), type=float)
        except msgspec.DecodeError:  # out of range (e300 on a long mantissa), or "00123.0": msgspec's
            assert k in got[2], t
            continue
        assert k not in got[2] and got[0][0, k].tobytes() == np.float64(want).tobytes(), t


def test_the_environment_variable_turns_it_off_and_a_bad_value_says_how(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert native.available()
    monkeypatch.setenv(native.ENV, "0")
    assert not native.available()
    monkeypatch.setenv(native.ENV, "maybe")
    with pytest.raises(ConfigError, match="DRIFTLINE_NATIVE='maybe': use 1 .* or 0"):
        native.available()
