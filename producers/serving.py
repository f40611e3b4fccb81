"""Serving side: holds the current model version and hot-reloads on model-update events."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from detectors.tasks import Task, get_task
from driftline.contracts import ModelUpdate
from driftline.errors import DriftlineError
from driftline.registry import ModelRegistry
from producers.shadow import ShadowScorer

__all__ = ["ModelServer"]

log = logging.getLogger(__name__)
_SERVED = ("promoted", "rollback")  # the updates that change the served version


class ModelServer:
    """Serves one model; ``apply(update)`` swaps in a newly promoted version between requests.

    A version switch is recorded in ``history`` as (first prediction index, version). The
    ``task`` (binary classification unless told) turns the model's output into (prediction, score).
    """

    def __init__(self, model: str, registry: ModelRegistry, task: Task | None = None) -> None:
        self.model = model
        self.registry = registry
        self.task = task or get_task("binary")
        champion = registry.champion(model)
        self.version = champion.version
        self._estimator: Any = registry.load(model, champion.version)
        self.history: list[tuple[int, str]] = []
        self.served = 0
        self.refused = 0  # updates not applied: unknown version, artifact missing or tampered
        self.scheduled: tuple[ModelUpdate, Any] | None = None  # loaded, serving from its effective_from
        self.shadow = ShadowScorer(model, registry, self.task)  # a challenger in its shadow period

    def predict(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        prediction, score = self.task.serve(self._estimator, X)
        self.served += len(X)
        return prediction, score

    def apply(self, update: ModelUpdate, now: float | None = None) -> bool:
        """Load the update's version if it was promoted, is for this model and differs from the one
        served (a "registered" announcement only tells the processor the version exists).

        ``now``: the event time of the next prediction. An update whose ``effective_from`` is later
        is loaded and kept in :attr:`scheduled`; :meth:`advance` swaps it in at the first prediction
        at or past that time -- so the switch lands on the same prediction however early or late the
        update is read. Returns True when the served version changed now."""
        self.shadow.apply(update)  # a shadow period starts or ends; the served version is decided below
        if update.kind not in _SERVED or update.model != self.model or update.version == self.version:
            return False
        try:  # by (model, version) from our registry, digest-checked: never a path from the message
            estimator = self.registry.load(update.model, update.version, sha256=update.artifact_sha256)
        except DriftlineError as exc:
            self.refused += 1
            log.error(
                "model %s: refusing update to version %s, keeping %s: %s",
                self.model,
                update.version,
                self.version,
                exc,
            )
            return False
        if update.effective_from is not None and now is not None and now < update.effective_from:
            self.scheduled = (update, estimator)
            return False
        self._switch(update, estimator)
        return True

    @property
    def scheduled_at(self) -> float | None:
        """The event time from which the scheduled update serves (None: nothing scheduled)."""
        return self.scheduled[0].effective_from if self.scheduled else None

    def advance(self, event_time: float) -> ModelUpdate | None:
        """Swap in the scheduled update if ``event_time`` (the next prediction's) has reached it."""
        at = self.scheduled_at
        if self.scheduled is None or at is None or event_time < at:
            return None
        (update, estimator), self.scheduled = self.scheduled, None
        self._switch(update, estimator)
        return update

    def _switch(self, update: ModelUpdate, estimator: Any) -> None:
        self._estimator, self.scheduled = estimator, None
        log.info("model %s: serving version %s (was %s)", self.model, update.version, self.version)
        self.version = update.version
        self.history.append((self.served, update.version))
