"""The checkpoint store unpickles nothing but its own authenticated bytes: a corrupt, truncated,
tampered, foreign-key or legacy (plain pickle) checkpoint is moved aside with an error, never
loaded, and the partition starts afresh; the key file is private."""

from __future__ import annotations

import logging
import pickle
import stat
from pathlib import Path

import pytest

from stream_processors.runners.checkpoint import CheckpointStore

STATE = ({"churn": {"n": 3}}, {"predictions": 10, "labels": 7})


class Boom:
    """Pickles to code that would run on load: proof that rejected bytes are never unpickled."""

    def __reduce__(self) -> tuple:
        return (Path("/nonexistent/ran").touch, ())


def saved(tmp_path: Path, key: bytes | None = None) -> tuple[CheckpointStore, Path]:
    store = CheckpointStore(tmp_path, "g", key)
    store.save(0, *STATE)
    return store, store.dir / "partition-0.ckpt"


def test_round_trip_and_key_file_is_private(tmp_path: Path) -> None:
    store, _ = saved(tmp_path)
    assert store.load(0) == STATE
    mode = stat.S_IMODE((tmp_path / ".checkpoint-key").stat().st_mode)
    assert mode == 0o600
    assert CheckpointStore(tmp_path, "g").load(0) == STATE  # the same key next time


@pytest.mark.parametrize(
    ("damage", "reason"),
    [
        (lambda raw: raw[: len(raw) // 2], "HMAC does not match"),
        (lambda raw: raw[:20], "truncated"),
        (lambda raw: b"", "truncated"),
        (lambda raw: raw[:-1] + bytes([raw[-1] ^ 1]), "HMAC does not match"),
        (lambda raw: pickle.dumps({"format": 1, "models": {"x": Boom()}, "offsets": {}}), "wrong header"),
    ],
    ids=["half", "header-only", "empty", "one-bit", "legacy-pickle"],
)
def test_damaged_checkpoint_is_rejected_not_loaded(tmp_path: Path, caplog, damage, reason: str) -> None:
    store, path = saved(tmp_path)
    path.write_bytes(damage(path.read_bytes()))
    with caplog.at_level(logging.ERROR):
        assert store.load(0) is None
    assert reason in caplog.text and "starts from its committed offsets" in caplog.text
    assert not path.exists() and len(list(store.dir.glob("partition-0.ckpt.rejected-*"))) == 1
    assert store.load(0) is None  # and the next start is clean


def test_checkpoint_under_another_key_is_rejected(tmp_path: Path) -> None:
    saved(tmp_path, key=b"k" * 32)
    assert CheckpointStore(tmp_path, "g", b"other-key-" * 4).load(0) is None
    assert CheckpointStore(tmp_path, "g", b"k" * 32).load(0) is None  # moved aside already


def test_forged_checkpoint_with_code_is_never_unpickled(tmp_path: Path) -> None:
    store, path = saved(tmp_path)
    blob = pickle.dumps({"format": 1, "models": {"x": Boom()}, "offsets": {}})
    raw = path.read_bytes()
    path.write_bytes(raw[:40] + blob)  # right header and a stale MAC over other bytes
    assert store.load(0) is None  # Boom would raise FileNotFoundError if it were unpickled


def test_a_checkpoint_of_an_older_state_format_is_set_aside(tmp_path: Path, monkeypatch, caplog) -> None:
    """After an upgrade that changed the core's state, an authentic older snapshot is never restored into
    objects that no longer fit: it is moved aside and the partition is rebuilt from its input."""
    import stream_processors.runners.checkpoint as checkpoint

    monkeypatch.setattr(checkpoint, "_FORMAT", checkpoint._FORMAT - 1)
    store, path = saved(tmp_path)
    monkeypatch.undo()
    with caplog.at_level(logging.ERROR):
        assert CheckpointStore(tmp_path, "g").load(0) is None
    assert "unknown format" in caplog.text and not path.exists()
