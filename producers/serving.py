"""Serving side: holds the current model version and hot-reloads on model-update events."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from driftline.contracts import ModelUpdate
from driftline.registry import ModelRegistry

__all__ = ["ModelServer"]

log = logging.getLogger(__name__)


class ModelServer:
    """Serves one model; ``apply(update)`` swaps in a newly promoted version between requests.

    A version switch is recorded in ``history`` as (first prediction index, version).
    """

    def __init__(self, model: str, registry: ModelRegistry) -> None:
        self.model = model
        self.registry = registry
        champion = registry.champion(model)
        self.version = champion.version
        self._estimator: Any = registry.load(champion.artifact_uri)
        self.history: list[tuple[int, str]] = []
        self.served = 0

    def predict(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        proba = self._estimator.predict_proba(X)[:, 1]
        self.served += len(X)
        return (proba >= 0.5).astype(int), proba

    def apply(self, update: ModelUpdate) -> bool:
        """Load the update's version if it is for this model and differs from the one served."""
        if update.model != self.model or update.version == self.version:
            return False
        self._estimator = self.registry.load(update.artifact_uri)
        log.info("model %s: serving version %s (was %s)", self.model, update.version, self.version)
        self.version = update.version
        self.history.append((self.served, update.version))
        return True
