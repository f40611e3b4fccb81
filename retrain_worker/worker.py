"""The retraining worker: retrain requests in, validated model versions and model updates out.

For each request (one per alert id, at most once -- the registry remembers which alert trained
which version): wait until enough labelled events newer than the alert's window exist, refit a
clone of the champion on the older part of the most recent window, validate challenger against
champion on the newest part (time-ordered holdout), register the challenger with its metrics
and windows, and -- if it wins by ``min_improvement`` -- promote it and publish a
:class:`~driftline.contracts.ModelUpdate`. Requests about a version already replaced, or within
the per-model cooldown, are skipped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.base import clone

from detectors.tasks import Task, get_task
from driftline.config import RetrainSettings, Topics
from driftline.contracts import ModelUpdate, RetrainRequest, Scored, Window, decode, encode
from driftline.errors import InvalidEvent
from driftline.registry import ModelRegistry
from driftline.transport import Sink, WindowReader

__all__ = ["RetrainOutcome", "RetrainWorker"]

log = logging.getLogger(__name__)

Trainer = Callable[[Any, pd.DataFrame, np.ndarray], Any]


def refit_clone(champion: Any, X: pd.DataFrame, y: np.ndarray) -> Any:
    """Default trainer: an unfitted clone of the champion, fitted on the new window."""
    return clone(champion).fit(X, y)


@dataclass(frozen=True)
class RetrainOutcome:
    request_id: str
    model: str
    status: Literal["promoted", "rejected", "skipped"]
    reason: str
    version: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    detected_at_index: int = -1
    trained_through_index: int = -1


class RetrainWorker:
    def __init__(
        self,
        settings: RetrainSettings,
        topics: Topics,
        registry: ModelRegistry,
        reader: WindowReader,
        sink: Sink,
        trainer: Trainer = refit_clone,
        task: Task | None = None,
    ) -> None:
        self.settings, self.topics, self.registry = settings, topics, registry
        self.reader, self.sink, self.trainer = reader, sink, trainer
        self.task = task or get_task("binary")  # whose validation metric compares the models
        self.pending: dict[str, RetrainRequest] = {}
        self.outcomes: list[RetrainOutcome] = []
        self.skipped_rows: dict[str, int] = {}  # reason -> scored events read but not trained on
        self._last_retrain: dict[str, float] = {}

    def submit(self, req: RetrainRequest) -> RetrainOutcome | None:
        """Queue a request; returns an outcome at once if it is skipped."""
        if req.request_id in self.pending or self.registry.find_triggered_by(req.model, req.request_id):
            return self._done(req, "skipped", "already handled (idempotent on alert id)")
        champion = self.registry.champion(req.model)
        if req.model_version != champion.version:
            return self._done(
                req, "skipped", f"stale: version {req.model_version} already replaced by {champion.version}"
            )
        last = self._last_retrain.get(req.model)
        t = req.alert.detected_at_time
        if last is not None and t - last < self.settings.cooldown_s:
            return self._done(
                req, "skipped", f"cooldown: a retrain of {req.model} began {t - last:.0f} s earlier"
            )
        self._last_retrain[req.model] = t
        self.pending[req.request_id] = req
        return None

    def submit_raw(self, value: bytes) -> RetrainOutcome | None:
        try:
            return self.submit(decode(RetrainRequest, value))
        except InvalidEvent as exc:
            log.error("retrain worker: dropping invalid request: %s", exc)
            return None

    def step(self) -> list[RetrainOutcome]:
        """Try every pending request whose data is ready; return what completed."""
        done = []
        for rid in list(self.pending):
            out = self._try(self.pending[rid])
            if out is not None:
                del self.pending[rid]
                done.append(out)
        return done

    def _gather(self, req: RetrainRequest) -> list[Scored]:
        """Labelled events after the change: from the drifted window's start for data drift; from
        the detection for error-stream alerts (their windows still hold pre-change events)."""
        a = req.alert
        since = a.window.start_time if a.type in ("data_drift", "prediction_drift") else a.detected_at_time
        rows = []
        for rec in self.reader.read_since(self.topics.scored, since, -1):
            try:
                s = decode(Scored, rec.value)
            except InvalidEvent:
                continue
            if s.prediction.model == req.model and s.prediction.event_time >= since:
                if s.features_dropped:  # sent without its features (too large): nothing to fit on
                    self.skipped_rows["features_dropped"] = self.skipped_rows.get("features_dropped", 0) + 1
                    continue
                rows.append(s)
        rows.sort(key=lambda s: s.prediction.event_time)
        return rows[-self.settings.train_window :]

    def _try(self, req: RetrainRequest) -> RetrainOutcome | None:
        s = self.settings
        rows = self._gather(req)
        if len(rows) < s.min_samples:
            return None  # not enough labelled data yet: wait for more
        X = pd.DataFrame([r.prediction.features for r in rows])
        y = np.array([r.label for r in rows])
        cut = int(len(rows) * (1 - s.holdout_fraction))
        champion_mv = self.registry.champion(req.model)
        champion = self.registry.load(req.model, champion_mv.version)
        challenger = self.trainer(champion, X.iloc[:cut], y[:cut])
        X_val, y_val = X.iloc[cut:], y[cut:]
        task = self.task
        new = task.validation_score(y_val, challenger.predict(X_val))
        old = task.validation_score(y_val, champion.predict(X_val))
        metrics = {
            f"challenger_{task.metric}": new,
            f"champion_{task.metric}": old,
            "n_train": float(cut),
            "n_validation": float(len(rows) - cut),
        }
        trained_on, validated_on = _window(rows[:cut]), _window(rows[cut:])
        if task.higher_is_better:
            wins = new >= old + s.min_improvement
        else:
            wins = new <= old - s.min_improvement
        mv = self.registry.register(
            req.model,
            challenger,
            metrics=metrics,
            trained_on=trained_on,
            validated_on=validated_on,
            triggered_by=req.request_id,
            promote=wins,
            stage="candidate" if wins else "rejected",
        )
        if not wins:
            return self._done(req, "rejected", "challenger did not beat champion", mv.version, metrics, rows)
        update = ModelUpdate(
            model=req.model,
            version=mv.version,
            previous_version=champion_mv.version,
            artifact_uri=mv.artifact_uri,
            artifact_sha256=mv.sha256,
            metrics=metrics,
            trained_on=Window(**trained_on),
            validated_on=Window(**validated_on),
            triggered_by=req.request_id,
            created_at=rows[-1].label_time,
        )
        self.sink.send(self.topics.models, req.model.encode(), encode(update), rows[-1].label_time)
        self.sink.flush()
        return self._done(req, "promoted", "challenger beat champion", mv.version, metrics, rows)

    def _done(
        self,
        req: RetrainRequest,
        status: Literal["promoted", "rejected", "skipped"],
        reason: str,
        version: str | None = None,
        metrics: dict[str, float] | None = None,
        rows: list[Scored] | None = None,
    ) -> RetrainOutcome:
        out = RetrainOutcome(
            req.request_id,
            req.model,
            status,
            reason,
            version,
            metrics or {},
            req.alert.detected_at_index,
            max((r.index for r in rows), default=-1) if rows else -1,
        )
        log.info("retrain %s for %s: %s (%s)", req.request_id, req.model, status, reason)
        self.outcomes.append(out)
        return out


def _window(rows: list[Scored]) -> dict[str, Any]:
    idx = [r.index for r in rows]
    return {
        "start_index": min(idx),
        "end_index": max(idx) + 1,
        "start_time": rows[0].prediction.event_time,
        "end_time": rows[-1].prediction.event_time,
        "n": len(rows),
    }
