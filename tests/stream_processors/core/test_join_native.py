"""The native label join is the Python one, step for step: fed the same calls on seeded streams of two
versions with duplicates, replays, late and orphan labels, expiries, evictions and forced merges, the
two give the same joins, merge records, counts and state after every call -- and a checkpoint of
either restores as the other."""

from __future__ import annotations

import os
import pickle
from typing import Any

import msgspec
import numpy as np
import pytest

from driftline import native
from driftline.contracts import Label, Prediction
from stream_processors.core.join import LabelJoiner
from stream_processors.core.join_native import Joiner, NativeJoiner, as_native, new_joiner, restore_joiner

if not native.built():  # .ci/run builds it (cargo is there): CI never skips
    if os.environ.get("CI"):
        pytest.fail("the native decoder was not built: is cargo on the PATH of pip install?")
    pytest.skip("the native decoder is not built (no Rust toolchain at install)", allow_module_level=True)


def _calls(seed: int, n: int = 3_000) -> list[tuple[str, list[Any]]]:
    """A random sequence of calls: predictions and labels in batches, drains now and then. Ids repeat
    (replays, duplicates), labels come early, late, twice or for unknown ids, event time jumps. Times are
    on a grid of quarter seconds, so that ties (with each other, with the horizon) are common."""
    rng = np.random.default_rng(seed)
    t, calls = 1_000.0, []
    preds: list[tuple[Prediction, int]] = []
    labels: list[Label] = []
    for i in range(n):
        t += round(float(rng.exponential(0.5)) * 4) / 4 + (40.0 if rng.random() < 0.004 else 0.0)
        pid = f"p{int(rng.integers(0, i + 1))}" if rng.random() < 0.05 else f"p{i}"  # some replay
        skew = round(float(rng.normal(0, 3)) * 4) / 4
        p = Prediction(
            prediction_id=pid,
            model="m",
            model_version="1",
            event_time=t + skew,
            features={},
            prediction=i % 3,
        )
        preds.append((p, i))
        u = rng.random()
        if u < 0.8:  # labelled, a little before or after the prediction in event time
            lt = t + skew + round(float(rng.normal(2.0, 3.0)) * 4) / 4
            labels.append(Label(prediction_id=pid, model="m", event_time=lt, label=int(rng.integers(0, 2))))
        if u > 0.97:  # a label for an id never predicted, or a second label
            other = f"q{i}" if rng.random() < 0.5 else pid
            labels.append(Label(prediction_id=other, model="m", event_time=t, label=1))
        if rng.random() < 0.08:
            calls.append(("add_predictions", preds))
            preds = []
        if rng.random() < 0.06:
            calls.append(("add_labels", labels))
            labels = []
        if rng.random() < 0.004:
            calls.append(("drain", []))
        if rng.random() < 0.01:
            calls.append(("restore", []))
    calls += [("add_predictions", preds), ("add_labels", labels), ("drain", [])]
    return calls


def _state(j: Joiner) -> dict[str, Any]:
    return j.__getstate__()


def _record(j: Joiner) -> tuple[Any, ...]:
    return (list(j.merged), list(j.joins_before), list(j.health), dict(j.counts), j.watermark, j.pending)


@pytest.mark.parametrize(
    ("seed", "lateness", "max_pending"), [(0, 10.0, 1_000_000), (1, 4.0, 7), (2, 25.0, 40), (3, 1.5, 3)]
)
def test_the_native_join_is_the_python_join(seed: int, lateness: float, max_pending: int) -> None:
    python: Joiner = LabelJoiner(lateness, max_pending)
    fast: Joiner = NativeJoiner(lateness, max_pending)
    joined = restores = 0
    for step, (call, arg) in enumerate(_calls(seed)):
        if call == "restore":  # each through the other's checkpoint
            from_fast = LabelJoiner.__new__(LabelJoiner)
            from_fast.__setstate__(pickle.loads(pickle.dumps(fast.__getstate__())))
            python, fast = from_fast, as_native(pickle.loads(pickle.dumps(python)))
            restores += 1
            assert type(fast) is NativeJoiner and _state(fast) == _state(python)
            continue
        if call == "add_predictions":  # which to read: as the monitor asks before it reads them
            fresh = python.new_by_version([p for p, _ in arg])
            assert fast.new_by_version([p for p, _ in arg]) == fresh and fast.counts == python.counts
        args = [] if call == "drain" else [arg]
        got_python, got_fast = getattr(python, call)(*args), getattr(fast, call)(*args)
        assert got_fast == got_python, f"step {step}: {call}"
        assert _record(fast) == _record(python), f"step {step}: {call}"
        assert _state(fast) == _state(python), f"step {step}: {call}"
        health = [python.health_at(k) for k in range(len(got_python))]
        assert [fast.health_at(k) for k in range(len(got_fast))] == health
        assert (fast.unmerged(), fast.waiting, fast.horizon, fast.arrival_horizon) == (
            python.unmerged(),
            python.waiting,
            python.horizon,
            python.arrival_horizon,
        )
        joined += len(got_fast)
    counts = fast.counts
    assert joined == counts["joined"] > 200 and restores >= 5, counts
    assert counts["duplicate_predictions"] and counts["duplicate_labels"] and counts["late_labels"]
    assert counts["orphan_labels"] and counts["expired_unlabelled"]
    if max_pending < 100:
        assert counts["forced"] and counts["evicted"]


def test_a_checkpoint_restores_as_the_join_this_install_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    j = new_joiner(5.0)
    assert type(j) is NativeJoiner
    p = Prediction(prediction_id="a", model="m", model_version="1", event_time=0.0, features={}, prediction=1)
    j.add_predictions([(p, 0), (msgspec.structs.replace(p, prediction_id="b", event_time=1.0), 1)])
    j.add_labels([Label(prediction_id="a", model="m", event_time=2.0, label=1)])
    blob = pickle.dumps(j)
    assert b"LabelJoiner" not in blob and b"NativeJoiner" not in blob  # its state, in the Python format
    assert type(pickle.loads(blob)) is NativeJoiner
    monkeypatch.setenv(native.ENV, "0")
    python = pickle.loads(blob)
    assert type(python) is LabelJoiner and type(new_joiner(5.0)) is LabelJoiner
    assert python.__getstate__() == restore_joiner(j.__getstate__()).__getstate__()
    assert [s.prediction.prediction_id for s in python.drain()] == ["a"]  # "b" waits for its label ...
    assert python.pending == 1 and python.is_new("c") and not python.is_new("b")
    monkeypatch.setenv(native.ENV, "1")
    again = as_native(pickle.loads(pickle.dumps(python)))  # ... and keeps waiting in the native join
    assert type(again) is NativeJoiner and again.pending == 1
    label = Label(prediction_id="b", model="m", event_time=3.0, label=0)
    assert again.add_labels([label]) == []  # (merged once both inputs have ended:)
    assert [(s.prediction.prediction_id, s.label) for s in again.drain()] == [("b", 0)]
    assert again.counts["joined"] == 2


def test_the_native_join_counts_what_the_python_join_counts() -> None:
    """The counters the native join keeps (native/src/join.rs names them again) are the Python join's, in
    its order: the metrics and the checkpoints read them by name."""
    assert list(NativeJoiner(1.0).counts) == list(LabelJoiner(1.0).counts)
    for joiner in (NativeJoiner(1.0), LabelJoiner(1.0)):  # and both refuse a join the last call did not make
        with pytest.raises(IndexError):
            joiner.health_at(0)


def test_an_item_that_is_not_a_prediction_fails_both_joins_alike() -> None:
    p = Prediction(prediction_id="a", model="m", model_version="1", event_time=5.0, features={}, prediction=1)
    for joiner in (NativeJoiner(1.0), LabelJoiner(1.0)):
        with pytest.raises((AttributeError, TypeError)):
            joiner.add_predictions([(p, 0), ("not a prediction", 1)])  # type: ignore[list-item]
        assert joiner.unmerged() == (1, 0) and joiner.arrival_watermark == float("-inf")
