"""Shadow scoring: during a challenger's shadow period serving scores every request with the
champion *and* the challenger; the caller gets the champion's answer, the challenger's is logged as a
shadow prediction, so the processor monitors both versions on the same live events and the retrain
worker can compare them pair by pair.

A shadow prediction has the champion's prediction id plus :data:`SHADOW_SUFFIX` and the challenger's
``model_version``; the client that logged it sends each label for that id under the shadow id too, so
both predictions are joined with the same ground truth.

The period starts with a :class:`~driftline.contracts.ModelUpdate` ``kind="registered",
shadow=True`` and ends with any promotion or rollback, or with ``kind="registered", shadow=False``
naming the challenger (rejected live).

>>> shadow_id("p-1")
'p-1~shadow'
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from detectors.tasks import Task
from driftline.contracts import ModelUpdate
from driftline.errors import DriftlineError
from driftline.registry import ModelRegistry

__all__ = ["SHADOW_SUFFIX", "ShadowScorer", "shadow_id"]

log = logging.getLogger(__name__)

SHADOW_SUFFIX = "~shadow"


def shadow_id(prediction_id: str) -> str:
    """The id of the shadow prediction made for ``prediction_id``."""
    return prediction_id + SHADOW_SUFFIX


class ShadowScorer:
    """The challenger serving keeps beside its champion during a shadow period (None outside one)."""

    def __init__(self, model: str, registry: ModelRegistry, task: Task) -> None:
        self.model, self.registry, self.task = model, registry, task
        self.version: str | None = None
        self._estimator: Any = None
        self.scored = 0

    def apply(self, update: ModelUpdate) -> None:
        """Start or end the shadow period as ``update`` says; a version that cannot be loaded is not
        shadowed (logged) -- the champion keeps serving either way."""
        if update.model != self.model:
            return
        if update.kind != "registered" or (not update.shadow and update.version == self.version):
            if self.version is not None:
                log.info("model %s: shadow of version %s ends (%s)", self.model, self.version, update.kind)
            self.version, self._estimator = None, None
            return
        if not update.shadow or update.version == self.version:
            return
        try:
            self._estimator = self.registry.load(update.model, update.version, sha256=update.artifact_sha256)
        except DriftlineError as exc:
            log.error("model %s: cannot shadow version %s: %s", self.model, update.version, exc)
            return
        self.version = update.version
        log.info("model %s: version %s now scores every request in shadow", self.model, update.version)

    def score(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray] | None:
        """The challenger's (prediction, score) for ``X``, or None outside a shadow period."""
        if self._estimator is None:
            return None
        self.scored += len(X)
        return self.task.serve(self._estimator, X)
