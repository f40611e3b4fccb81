"""The retraining worker: retrain requests in, validated model versions and model updates out.

For each request (one per alert id, at most once -- the registry remembers which alert trained
which version and what became of every request): wait until enough labelled events newer than the
alert's window exist, refit a clone of the champion on the older part of the most recent window,
validate challenger against champion on the newest part (time-ordered holdout), register the
challenger with its metrics and windows, and -- if it wins by ``min_improvement`` -- promote it and
publish a :class:`~driftline.contracts.ModelUpdate`. Requests about a version already replaced, or
within the per-model cooldown, are skipped.

Nothing is lost and nothing crashes the worker:

* every outcome is recorded in the registry (:meth:`ModelRegistry.record_outcome`) before its
  request may be committed (:class:`~retrain_worker.runner.RetrainRunner` commits only up to the
  oldest undecided request); a request read again after a restart is skipped if it was decided;
* a version registered but not announced before a crash is announced when its request is read
  again (unless the models topic already holds its update, or a newer champion replaced it);
* a request that can never succeed (invalid bytes, unknown model, no champion) becomes a dead letter
  on ``topics.dlq`` and a ``failed`` :class:`~driftline.contracts.RetrainOutcome` on
  ``topics.notifications``; a training that raises is retried, then recorded and notified as
  ``failed`` after ``max_attempts``. Registry or broker trouble leaves the request pending: it is
  tried again at the next :meth:`RetrainWorker.step`.
"""

from __future__ import annotations

import logging
from typing import Literal

import msgspec

from detectors.tasks import Task, get_task
from driftline.config import DriftlineSettings, RetrainSettings, Topics
from driftline.contracts import (
    DeadLetter,
    ModelUpdate,
    RetrainOutcome,
    RetrainRequest,
    Scored,
    Window,
    decode,
    encode,
)
from driftline.errors import DriftlineError, InvalidEvent
from driftline.registry import ModelRegistry, ModelVersion, RegistryError
from driftline.registry_lineage import lineage_of, offset_ranges
from driftline.transport import Record, Sink, WindowReader
from retrain_worker.cooldown import Cooldowns, another_run
from retrain_worker.recipe import Recipes
from retrain_worker.rollback import previous_champion
from retrain_worker.shadow import begin_shadow
from retrain_worker.training import Trainer, fit_and_validate, refit_clone

__all__ = ["STAGE", "RetrainOutcome", "RetrainWorker", "refit_clone"]

log = logging.getLogger(__name__)

STAGE = "retrain"  # the dead letters' stage
Status = Literal["promoted", "rejected", "skipped", "failed", "shadow", "rolled_back"]


class RetrainRefused(DriftlineError):
    """A request that can never succeed as it is (unknown model, no champion); it is dead-lettered."""


class RetrainWorker:
    """Decides retrain requests; see the module docstring for what survives what.

    ``submit_record`` / ``submit`` decide at once (a skip, a refusal) or queue the request in
    :attr:`pending`; :meth:`step` tries every pending request. :attr:`positions` says where each
    pending request was read, so a runner commits no further than the oldest of them.

    Given :class:`DriftlineSettings`, a model declared in ``settings.models`` retrains with its own
    recipe (:class:`~retrain_worker.recipe.Recipes`: its trainer, imported now -- a bad one raises
    :class:`~driftline.errors.ConfigError` here --, window, cooldown and promotion rule, its task);
    ``trainer`` and ``task`` are for the others.
    """

    def __init__(
        self,
        settings: RetrainSettings | DriftlineSettings,
        topics: Topics,
        registry: ModelRegistry,
        reader: WindowReader,
        sink: Sink,
        trainer: Trainer = refit_clone,
        task: Task | None = None,
        *,
        max_attempts: int = 3,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
        models = settings.models if isinstance(settings, DriftlineSettings) else {}
        settings = settings.retrain if isinstance(settings, DriftlineSettings) else settings
        self.settings, self.topics, self.registry = settings, topics, registry
        self.reader, self.sink, self.trainer = reader, sink, trainer
        self.task = task or get_task("binary")  # whose validation metric compares the models
        self.recipes = Recipes(settings, models, trainer, self.task)
        self.max_attempts = max_attempts
        self.pending: dict[str, RetrainRequest] = {}
        self.positions: dict[str, tuple[str, int, int]] = {}  # request id -> (topic, partition, offset)
        self.attempts: dict[str, int] = {}  # request id -> trainings that raised
        self.outcomes: list[RetrainOutcome] = []
        self.skipped_rows: dict[str, int] = {}  # reason -> scored events read but not trained on
        self.cooldowns = Cooldowns()  # the retrains begun here, per model
        self._where: dict[int, tuple[int, int]] = {}  # id(row) -> (partition, offset), last gather

    # -- deciding at once, or queueing -----------------------------------------------------------
    def submit_record(self, record: Record) -> RetrainOutcome | None:
        """A request as read from the retrain topic; invalid bytes are refused, never raised."""
        try:
            req = decode(RetrainRequest, record.value)
        except InvalidEvent as exc:
            return self._refuse(record, exc, None)
        return self.submit(req, record)

    def submit(self, req: RetrainRequest, record: Record | None = None) -> RetrainOutcome | None:
        """Decide ``req`` at once if possible (skipped or refused) and return the outcome; else queue
        it and return None."""
        record = record or Record(self.topics.retrain, encode(req), req.model.encode())
        problem = self._cannot_succeed(req)
        if problem:
            return self._refuse(record, RetrainRefused(problem), req)
        recorded = self.registry.outcomes(req.model)
        prior = recorded.get(req.request_id)
        if prior is not None or req.request_id in self.pending:
            why = f"; it was {prior['status']}" if prior else "; it is pending"
            return self._done(req, "skipped", f"already handled (idempotent on alert id){why}", record=False)
        if self.registry.find_triggered_by(req.model, req.request_id) is not None:
            self._queue(req, record)  # registered before a restart: step() finishes it
            return None
        champion = self.registry.champion(req.model)
        if req.model_version != champion.version:
            return self._done(
                req, "skipped", f"stale: version {req.model_version} already replaced by {champion.version}"
            )
        t = req.alert.detected_at_time
        durable = [] if another_run(champion, t) else recorded.values()
        last = self.cooldowns.last(req.model, t, durable)
        if last is not None and t - last < self.recipes.settings(req.model).cooldown_s:
            return self._done(
                req, "skipped", f"cooldown: a retrain of {req.model} began {t - last:.0f} s earlier"
            )
        self.cooldowns.began(req.model, t)
        self._queue(req, record)
        return None

    def _queue(self, req: RetrainRequest, record: Record) -> None:
        self.pending[req.request_id] = req
        self.positions[req.request_id] = (record.topic, record.partition, record.offset)
        n = self.recipes.settings(req.model).min_samples
        log.info("retrain %s for %s: waiting for %d labelled events", req.request_id, req.model, n)

    def _cannot_succeed(self, req: RetrainRequest) -> str:
        try:
            if not self.registry.versions(req.model):
                return f"unknown model {req.model!r}: the registry has no version of it; register a champion"
            self.registry.champion(req.model)
        except (RegistryError, ValueError, KeyError, TypeError) as exc:  # no champion, unsafe name, bad index
            return str(exc)
        return ""

    def forget(self, partitions: list[int]) -> list[str]:
        """Drop the pending requests read from ``partitions`` (taken away by a rebalance: their new
        owner reads them again from the committed offset); returns their ids."""
        gone = set(partitions)
        ids = [rid for rid, (_, p, _) in self.positions.items() if p in gone]
        for rid in ids:  # not begun here after all: read again, it must not cool itself down
            self.cooldowns.forget(self.pending[rid].model, self.pending[rid].alert.detected_at_time)
            self._forget(rid)
        return ids

    def _forget(self, rid: str) -> None:
        self.pending.pop(rid, None)
        self.positions.pop(rid, None)
        self.attempts.pop(rid, None)

    # -- trying the pending requests -------------------------------------------------------------
    def step(self, now: float | None = None) -> list[RetrainOutcome]:
        """Try the pending requests; return what completed. ``now``: the loop's event time (None: all
        there is) -- a decision trains on labels before it and serves from it, whenever the worker ran."""
        done = []
        for rid in list(self.pending):
            req = self.pending[rid]
            try:
                out = self._try(req, now)
            except Exception as exc:  # registry or broker trouble: the request stays, tried again
                log.error("retrain %s for %s: %s; trying again later", rid, req.model, exc, exc_info=True)
                continue
            if out is not None:
                self._forget(rid)
                done.append(out)
        return done

    def _gather(self, req: RetrainRequest, now: float | None = None) -> list[Scored]:
        """Labelled events after the change: from the drifted window's start for data drift; from
        the detection for error-stream alerts (their windows still hold pre-change events). With the
        loop's clock ``now``, those labelled before it; without, the first ``min_samples`` to be
        labelled -- the same rows whenever the worker tries (a processor slowed by a fault, a broker
        restart), so a version depends on the request and the stream only."""
        a = req.alert
        since = a.window.start_time if a.type in ("data_drift", "prediction_drift") else a.detected_at_time
        rows, self._where = [], {}  # where each row was read: its training window's offsets
        for rec in self.reader.read_since(self.topics.scored, since, -1):
            try:
                s = decode(Scored, rec.value)
            except InvalidEvent:
                continue
            before = now is None or s.label_time < now  # labelled after the loop's clock: not yet
            if before and s.prediction.model == req.model and s.prediction.event_time >= since:
                if s.features_dropped:  # sent without its features (too large): nothing to fit on
                    self.skipped_rows["features_dropped"] = self.skipped_rows.get("features_dropped", 0) + 1
                    continue
                rows.append(s)
                self._where[id(s)] = (rec.partition, rec.offset)
        settings = self.recipes.settings(req.model)
        if now is None:  # no loop clock: the first min_samples labelled, however far the stream got
            rows.sort(key=lambda s: (s.label_time, s.index))
            rows = rows[: settings.min_samples]
        rows.sort(key=lambda s: s.prediction.event_time)
        return rows[-settings.train_window :]

    def _try(self, req: RetrainRequest, now: float | None = None) -> RetrainOutcome | None:
        registered = self.registry.find_triggered_by(req.model, req.request_id)
        if registered is not None:  # registered before a restart or a failed publish
            return self._resume(req, registered)
        rows, recipes, m = self._gather(req, now), self.recipes, req.model
        if len(rows) < recipes.settings(m).min_samples:
            return None  # not enough labelled data yet: wait for more
        champion_mv = self.registry.champion(req.model)
        try:
            champion = self.registry.load(req.model, champion_mv.version)
            fit = fit_and_validate(
                champion, rows, recipes.settings(m), recipes.task(m), recipes.trainer(m), recipes.features(m)
            )
        except Exception as exc:  # a trainer bug, data it cannot fit
            return self._attempt_failed(req, exc, rows)
        shadow = fit.wins and recipes.settings(m).shadow_labelled > 0  # tried live before promotion
        mv = self.registry.register(
            req.model,
            fit.challenger,
            metrics=fit.metrics,
            trained_on=fit.trained_on,
            validated_on=fit.validated_on,
            triggered_by=req.request_id,
            lineage=lineage_of(  # the training rows' digest and offsets, trainer, params, code version
                train := rows[: int(fit.trained_on["n"])],
                trainer=recipes.trainer_name(m),
                estimator=fit.challenger,
                topic=self.topics.scored,
                offsets=offset_ranges(train, self._where),
            ),
            promote=fit.wins and not shadow,
            stage="challenger" if shadow else "candidate" if fit.wins else "rejected",
        )
        if not fit.wins:
            why = fit.reason  # on-call hears of it: the drift stays unresolved
            return self._done(req, "rejected", why, mv.version, fit.metrics, rows, notify=True)
        if shadow:  # serving scores it beside the champion; its live evidence decides (ShadowJudge)
            begin_shadow(self.registry, self.sink, self.topics, mv, champion_mv.version, rows[-1].label_time)
            return self._done(req, "shadow", fit.reason, mv.version, fit.metrics, rows, notify=True)
        self._publish(mv, champion_mv.version, rows[-1].label_time, now)
        return self._done(req, "promoted", fit.reason, mv.version, fit.metrics, rows)

    def _publish(self, mv: ModelVersion, previous: str | None, created: float, at: float | None = None):
        """Announce the promoted version on the models topic (serving hot-reloads it)."""
        update = ModelUpdate(
            model=mv.model,
            version=mv.version,
            previous_version=previous,
            artifact_uri=mv.artifact_uri,
            artifact_sha256=mv.sha256,
            metrics=mv.metrics,
            trained_on=Window(**mv.trained_on) if mv.trained_on else None,
            validated_on=Window(**mv.validated_on) if mv.validated_on else None,
            triggered_by=mv.triggered_by,
            created_at=created,
            effective_from=at,
        )
        self.sink.send(self.topics.models, mv.model.encode(), encode(update), created)
        self._flush(f"the model update for {mv.model} v{mv.version}")

    def _resume(self, req: RetrainRequest, mv: ModelVersion) -> RetrainOutcome:
        """Finish a request whose version was registered but whose outcome was not recorded."""
        end = int(mv.validated_on["end_index"]) - 1 if mv.validated_on else -1
        if mv.stage == "rejected":
            why = "challenger did not beat champion"
            return self._done(req, "rejected", why, mv.version, mv.metrics, through=end, notify=True)
        if mv.stage == "challenger":  # its shadow announced again: serving and the processor take it once
            at = float((mv.validated_on or {}).get("end_time", mv.created_at))
            champion = self.registry.champion(mv.model).version
            begin_shadow(self.registry, self.sink, self.topics, mv, champion, at)
            why = "challenger in shadow (announced again after a restart)"
            return self._done(req, "shadow", why, mv.version, mv.metrics, through=end, notify=True)
        if self._announced(mv):
            why = "its model update was already on the models topic"
        elif self.registry.champion(mv.model).version != mv.version:
            why = "not announced: a newer champion replaced it"
        else:
            created = float(mv.validated_on["end_time"]) if mv.validated_on else mv.created_at
            previous = previous_champion(self.registry.versions(mv.model), mv)
            self._publish(mv, previous.version if previous else None, created)
            why = "announced after a restart"
        log.warning(
            "retrain %s for %s: v%s was registered before a restart; %s",
            req.request_id,
            req.model,
            mv.version,
            why,
        )
        return self._done(
            req, "promoted", f"challenger beat champion ({why})", mv.version, mv.metrics, through=end
        )

    def _announced(self, mv: ModelVersion) -> bool:
        for rec in self.reader.read_since(self.topics.models, 0.0, -1):
            try:
                u = decode(ModelUpdate, rec.value)
            except InvalidEvent:
                continue
            if (u.model, u.version, getattr(u, "kind", "promoted")) == (mv.model, mv.version, "promoted"):
                return True
        return False

    def _attempt_failed(
        self, req: RetrainRequest, exc: Exception, rows: list[Scored]
    ) -> RetrainOutcome | None:
        n = self.attempts[req.request_id] = self.attempts.get(req.request_id, 0) + 1
        log.warning(
            "retrain %s for %s: training failed (attempt %d of %d): %r",
            req.request_id,
            req.model,
            n,
            self.max_attempts,
            exc,
        )
        if n < self.max_attempts:
            return None  # tried again at the next step, on the data there is by then
        by = self.recipes.trainer_name(req.model)
        reason = f"training failed {n} times; last error ({by}): {type(exc).__name__}: {str(exc)[:300]}"
        return self._done(req, "failed", reason, rows=rows, notify=True)

    # -- outcomes --------------------------------------------------------------------------------
    def _refuse(self, record: Record, exc: Exception, req: RetrainRequest | None) -> RetrainOutcome:
        """A request that can never succeed: a dead letter, a notification, nothing recorded in the
        registry (its model may not be there, or not be a name at all)."""
        out = RetrainOutcome(
            request_id=req.request_id if req else "",
            model=req.model if req else "",
            status="failed",
            reason=f"refused: {exc}",
            detected_at_index=req.alert.detected_at_index if req else -1,
            detected_at_time=req.alert.detected_at_time if req else 0.0,
        )
        self.sink.send(self.topics.dlq, record.key, encode(DeadLetter.of_record(record, exc, STAGE)), None)
        self.sink.send(self.topics.notifications, record.key, encode(out), None)
        self._flush("a refused request's dead letter and notification")
        log.error(
            "retrain request at %s[%d]@%d refused: %s", record.topic, record.partition, record.offset, exc
        )
        self.outcomes.append(out)
        return out

    def _done(
        self,
        req: RetrainRequest,
        status: Status,
        reason: str,
        version: str | None = None,
        metrics: dict[str, float] | None = None,
        rows: list[Scored] | None = None,
        *,
        through: int = -1,
        record: bool = True,
        notify: bool = False,
    ) -> RetrainOutcome:
        out = RetrainOutcome(
            request_id=req.request_id,
            model=req.model,
            status=status,
            reason=reason,
            version=version,
            metrics=metrics or {},
            detected_at_index=req.alert.detected_at_index,
            detected_at_time=req.alert.detected_at_time,
            trained_through_index=max((r.index for r in rows), default=-1) if rows else through,
        )
        if notify:  # before recording: a kill in between repeats the notification, never loses it
            self.sink.send(self.topics.notifications, req.model.encode(), encode(out), None)
            self._flush(f"the notification of retrain {req.request_id}")
        if record:
            self.registry.record_outcome(req.model, req.request_id, msgspec.to_builtins(out))
        log.info("retrain %s for %s: %s (%s)", req.request_id, req.model, status, reason)
        self.outcomes.append(out)
        return out

    def _flush(self, what: str) -> None:
        left = self.sink.flush()
        if left:
            raise DriftlineError(f"{what}: {left} message(s) not delivered; is the broker reachable?")
