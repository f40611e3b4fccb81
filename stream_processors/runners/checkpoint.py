"""Explicit checkpoints of processor state, per input partition, with the offsets they reflect.

Topics are keyed by model, so each input partition holds whole models: the state of the models
seen on partition ``p`` (join buffers, reference windows, detectors) is saved together with the
next offsets of partition ``p`` of every input topic, in one file written atomically. A processor
that is assigned ``p`` -- after a restart, or in a rebalance -- loads that file and resumes reading
at exactly those offsets, so its state and its position never disagree: nothing is skipped and
nothing counted twice.

>>> import tempfile
>>> store = CheckpointStore(tempfile.mkdtemp(), group="g")
>>> store.save(0, {"churn": {"n": 3}}, {"predictions": 10, "labels": 7})
>>> store.load(0)
({'churn': {'n': 3}}, {'predictions': 10, 'labels': 7})
>>> store.load(1) is None
True
"""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["CheckpointStore"]

_FORMAT = 1


class CheckpointStore:
    def __init__(self, root: str | os.PathLike[str], group: str) -> None:
        self.dir = Path(root) / group
        self.dir.mkdir(parents=True, exist_ok=True)

    def _path(self, partition: int) -> Path:
        return self.dir / f"partition-{partition}.ckpt"

    def save(self, partition: int, models: dict[str, Any], offsets: dict[str, int]) -> None:
        blob = pickle.dumps(
            {"format": _FORMAT, "models": models, "offsets": offsets}, protocol=pickle.HIGHEST_PROTOCOL
        )
        fd, tmp = tempfile.mkstemp(dir=self.dir, suffix=".tmp")
        with os.fdopen(fd, "wb") as fh:
            fh.write(blob)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self._path(partition))

    def load(self, partition: int) -> tuple[dict[str, Any], dict[str, int]] | None:
        path = self._path(partition)
        if not path.exists():
            return None
        data = pickle.loads(path.read_bytes())  # noqa: S301 - our own files, in our own directory
        if data.get("format") != _FORMAT:
            return None
        return data["models"], data["offsets"]
