"""The processor core gives the same outputs, byte for byte, whether a model's predictions are decoded
whole (msgspec) or as heads whose features the native decoder reads, and joined by the Python or the
native join: scored events, metrics, alerts and
dead letters with their reasons -- through bad records, a version change and a producer that changes
its features' order (whose batches the decoder declines until it is no longer tried)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

from driftline import native
from driftline.config import MonitorSettings, Topics
from driftline.transport import Record
from stream_processors.core.join import LabelJoiner
from stream_processors.core.join_native import NativeJoiner
from stream_processors.core.model_monitor import NATIVE_DECLINES
from stream_processors.core.processor import ProcessorCore

if not native.built():  # .ci/run builds it (cargo is there): CI never skips
    if os.environ.get("CI"):
        pytest.fail("the native decoder was not built: is cargo on the PATH of pip install?")
    pytest.skip("the native decoder is not built (no Rust toolchain at install)", allow_module_level=True)

TOPICS = Topics()


def _stream(
    width: int, n: int, seed: int = 0, reorder_from: int | None = None, version_2_at: float | None = 0.8
) -> list[Record]:
    """Predictions of model "m" (``width`` features, every tenth categorical; ``x1`` shifts half way,
    version "2" from ``version_2_at`` on), each labelled 3 events later; and bad records along the way. From
    ``reorder_from`` on, the producer writes the features in reverse order."""
    rng = np.random.default_rng(seed)
    names = [f"c{j}" if j % 10 == 9 else f"x{j}" for j in range(width)]
    recs: list[Record] = []
    labels: list[tuple[int, dict[str, Any]]] = []
    offsets = {TOPICS.predictions: 0, TOPICS.labels: 0}

    def add(topic: str, value: bytes, t: float, key: bytes | None = b"m") -> None:
        recs.append(Record(topic, value, key, 0, offsets[topic], t))
        offsets[topic] += 1

    for i in range(n):
        t = 1_000.0 + i
        feats: dict[str, Any] = {}
        for name in names:
            if name.startswith("c"):
                feats[name] = str(rng.choice(["a", "b", "c"]))
            else:
                feats[name] = float(rng.normal(1.5 if name == "x1" and i > n // 2 else 0.0))
        if i % 97 == 5:
            feats["x0"] = None  # a missing value: monitored as such
        if i % 211 == 7:
            feats["x0"] = int(rng.integers(-5, 5))  # an integer: the same float either way
        if reorder_from is not None and i >= reorder_from:
            feats = dict(reversed(list(feats.items())))
        version = "2" if version_2_at is not None and i >= int(n * version_2_at) else "1"
        pred = {"prediction_id": f"p{i}", "model": "m", "model_version": version, "event_time": t}
        pred |= {"features": feats, "prediction": int(rng.random() < 0.5), "score": float(rng.random())}
        if i % 300 == 11:  # a field of the head's that no prediction has: the record is carried as sent
            pred["raw"] = {"features": {}}
        add(TOPICS.predictions, json.dumps(pred).encode(), t)
        labels.append((i, {"prediction_id": f"p{i}", "model": "m", "event_time": t + 0.5}))
        if i % 500 == 250:  # bad records, each of another kind
            bad = dict(pred, prediction_id=f"bad{i}")
            add(TOPICS.predictions, json.dumps(bad | {"features": {**feats, "x0": "high"}}).encode(), t)
            add(TOPICS.predictions, json.dumps(bad | {"features": {**feats, "x2": [1, 2]}}).encode(), t)
            add(TOPICS.predictions, json.dumps({k: v for k, v in bad.items() if k != "features"}).encode(), t)
            add(TOPICS.predictions, json.dumps(bad | {"features": {**feats, "x3": 1e999}}).encode()[:-9], t)
            add(TOPICS.predictions, json.dumps(bad).encode(), t, key=b"other")
            add(TOPICS.predictions, json.dumps(bad | {"features": {**feats, "../x": 1.0}}).encode(), t)
        while labels and labels[0][0] <= i - 3:
            j, lab = labels.pop(0)
            add(TOPICS.labels, json.dumps(lab | {"label": j % 2}).encode(), lab["event_time"])
    for _, lab in labels:
        add(TOPICS.labels, json.dumps(lab | {"label": 1}).encode(), lab["event_time"])
    return recs


def _batches(recs: list[Record], size: int) -> Iterator[list[Record]]:
    for a in range(0, len(recs), size):
        yield recs[a : a + size]


def _run(recs: list[Record], use_native: bool, monkeypatch: pytest.MonkeyPatch) -> tuple[list[Any], int]:
    """Every output message, and how many batches the native decoder read."""
    monkeypatch.setenv(native.ENV, "1" if use_native else "0")
    read = 0
    real: Callable[..., Any] = native.feature_columns

    def counted(*args: Any) -> Any:
        nonlocal read
        got = real(*args)
        read += got is not None
        return got

    monkeypatch.setattr(native, "feature_columns", counted)
    core = ProcessorCore(MonitorSettings(reference_size=500, window_size=200), TOPICS)
    out = []
    for batch in _batches(recs, 700):
        out += core.process(batch).messages(TOPICS)
    out += core.drain().messages(TOPICS)
    assert type(core.models["m"].joiner) is (NativeJoiner if use_native else LabelJoiner)
    return out, read


@pytest.mark.parametrize("width", [8, 30])
def test_native_and_general_paths_give_the_same_outputs(width: int, monkeypatch: pytest.MonkeyPatch) -> None:
    recs = _stream(width, 4000)
    general, read_general = _run(recs, False, monkeypatch)
    fast, read_fast = _run(recs, True, monkeypatch)
    assert read_general == 0 and read_fast >= 5  # the native path was taken, batch after batch
    assert fast == general
    topics = [m[0] for m in general]
    assert topics.count(TOPICS.scored) >= 3900
    assert topics.count(TOPICS.alerts) >= 1  # x1's shift
    dead = [json.loads(m[2]) for m in general if m[0] == TOPICS.dlq]
    assert len(dead) == 6 * 8  # each bad record once, with its reason
    assert sum("is not a safe name" in d["reason"] for d in dead) == 8
    assert {d["stage"] for d in dead} == {"decode", "validate"}


def test_a_producer_that_changes_its_order_is_declined_then_decoded_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    recs = _stream(20, 4000, reorder_from=1500, version_2_at=None)
    general, _ = _run(recs, False, monkeypatch)
    fast, read = _run(recs, True, monkeypatch)
    assert fast == general
    core = ProcessorCore(MonitorSettings(reference_size=500, window_size=200), TOPICS)
    monkeypatch.setenv(native.ENV, "1")
    core.native = True
    heads = []
    for batch in _batches(recs, 700):
        core.process(batch)
        heads.append(bool(core._heads))
    assert heads[1] and heads[2]  # read natively before the change (the first batch starts the version)
    assert not any(heads[-3:])  # no longer tried once declined NATIVE_DECLINES times
    assert core.models["m"].native_declined == {"1": NATIVE_DECLINES}
