"""Automatic rollback: a promoted version that does worse live than the champion it replaced is
replaced by that champion again.

A promotion is decided on a holdout of a few hundred events; the live stream is the real test. The
:class:`RollbackWatcher` reads the processor's metrics (``topics.metrics``) of each model's current
champion and compares its live score with the *previous* champion's level recorded at promotion (its
holdout score and one-sided bounds, ``champion_<metric>_ci_low/_ci_high``, written by
:func:`~retrain_worker.training.fit_and_validate`). The new version is rolled back only when the
regression is significant: once its rolling window holds ``rollback_min_labelled`` labelled events,
the live score's own one-sided bound at ``confidence`` lies beyond the previous level's bound
(accuracy: a Clopper-Pearson upper bound below the old lower bound; MAE: a normal lower bound, from
the holdout's spread of absolute errors, above the old upper bound). While labels lag (label
coverage below one half) the task's label-free estimate is read the same way, over the predictions
behind the labelled window.

A rollback, in this order, so that nothing is lost and nothing is published twice:

1. the decision is recorded in the registry (a ``rolled_back`` retrain outcome keyed
   ``rollback-<model>-v<bad>``; the first decision stands);
2. unless the models topic already holds it, a :class:`~driftline.contracts.ModelUpdate`
   ``kind="rollback"`` (``version`` the previous champion, ``previous_version`` the bad one) is
   published -- serving hot-reloads it as it would a promotion;
3. on-call is notified (the outcome on ``topics.notifications``; a kill here repeats it, never loses it);
4. the registry makes the previous version champion again and marks the bad one ``rolled_back`` with
   the reason.

A kill between any two steps leaves the bad version champion in the registry, so the same metric,
read again (its offset is committed only after the decision), resumes at the first step not done.
Versions the watcher cannot judge -- registered by hand, no previous champion, no recorded level --
are left alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

import msgspec
from scipy import stats

from detectors.tasks import Task
from driftline.config import RetrainSettings, Topics
from driftline.contracts import Metric, ModelUpdate, RetrainOutcome, decode, encode
from driftline.errors import DriftlineError, InvalidEvent
from driftline.registry import ModelRegistry, ModelVersion
from driftline.transport import Record, Sink, WindowReader
from retrain_worker.evidence import proportion_bounds
from retrain_worker.shadow import ShadowJudge

if TYPE_CHECKING:
    from retrain_worker.worker import RetrainWorker

__all__ = [
    "MetricSource",
    "RollbackRunner",
    "RollbackWatcher",
    "previous_champion",
    "rollback_id",
    "watcher_for",
]

log = logging.getLogger(__name__)

LOW_COVERAGE = 0.5  # below it, the label-free estimate is read too


def rollback_id(model: str, bad: str) -> str:
    """The retrain-outcome id under which the rollback of ``bad`` is recorded (once)."""
    return f"rollback-{model}-v{bad}"


def previous_champion(versions: list[ModelVersion], mv: ModelVersion) -> ModelVersion | None:
    """The champion ``mv`` replaced: the newest archived version registered before it."""
    older = [v for v in versions if int(v.version) < int(mv.version) and v.stage == "archived"]
    return older[-1] if older else None


class RollbackWatcher:
    """Watches each model's champion on the metrics topic; see the module docstring.

    ``settings(model)`` and ``task(model)``: the model's retrain settings and task (the worker's
    :class:`~retrain_worker.recipe.Recipes`)."""

    def __init__(
        self,
        settings: Callable[[str], RetrainSettings],
        task: Callable[[str], Task],
        topics: Topics,
        registry: ModelRegistry,
        reader: WindowReader,
        sink: Sink,
    ) -> None:
        self.settings, self.task, self.topics = settings, task, topics
        self.registry, self.reader, self.sink = registry, reader, sink
        self.shadow = ShadowJudge(settings, task, topics, registry, reader, sink)
        self._champions: dict[str, ModelVersion] = {}
        self._coverage: dict[tuple[str, str], float] = {}
        self.outcomes: list[RetrainOutcome] = []

    def on_record(self, record: Record) -> RetrainOutcome | None:
        """A record of the metrics topic; one that does not decode is not this watcher's concern."""
        try:
            metric = decode(Metric, record.value)
        except InvalidEvent:
            return None
        return self.on_metric(metric)

    def on_metric(self, m: Metric) -> RetrainOutcome | None:
        """The rollback this metric point decides, if any (registry or broker trouble raises)."""
        s = self.settings(m.model)
        if m.segment or not (s.rollback or s.shadow_labelled):
            return None
        if m.name == "label_coverage":
            self._coverage[(m.model, m.model_version)] = m.value
            return None
        task = self.task(m.model)
        estimate = task.label_free_estimate(50).name
        if m.name not in (task.metric, estimate):
            return None
        champion = self._champion(m.model, m.model_version)
        if champion is None:  # another version: a challenger in shadow, perhaps
            return self.shadow.on_metric(m) if self.settings(m.model).shadow_labelled else None
        verdict = self._regressed(m, champion, task, estimate)
        return None if verdict is None else self._roll_back(m, champion, verdict)

    def _champion(self, model: str, version: str) -> ModelVersion | None:
        known = self._champions.get(model)
        if known is None or known.version != version:
            known = self._champions[model] = self.registry.champion(model)
        return known if known.version == version else None

    def _regressed(self, m: Metric, champion: ModelVersion, task: Task, estimate: str) -> str | None:
        """Why ``m`` shows ``champion`` significantly worse than the level it was promoted over, or None."""
        s, metric, recorded = self.settings(m.model), task.metric, champion.metrics
        level = recorded.get(f"champion_{metric}")
        old_low, old_high = (
            recorded.get(f"champion_{metric}_ci_low"),
            recorded.get(f"champion_{metric}_ci_high"),
        )
        if level is None or old_low is None or old_high is None:
            return None  # not promoted by the worker: no level to compare with
        n, what = m.window.n, f"live {metric}"
        if m.name == estimate:
            coverage = self._coverage.get((m.model, m.model_version), 1.0)
            if coverage >= LOW_COVERAGE:
                return None  # the labelled metric speaks
            n, what = int(n / max(coverage, 0.05)), f"label-free {estimate}"
        if not s.rollback or n < s.rollback_min_labelled:
            return None
        pct = f"{100 * s.confidence:g}%"
        if task.higher_is_better:
            _, high = proportion_bounds(int(round(m.value * n)), n, s.confidence)
            if high >= old_low:
                return None
            bound = f"its {pct} upper bound {high:.3f} is below v's lower bound {old_low:.3f}"
        else:
            sd = recorded.get(f"challenger_{metric}_sd", 0.0)
            low = m.value - float(stats.norm.ppf(s.confidence)) * sd / n**0.5
            if low <= old_high:
                return None
            bound = f"its {pct} lower bound {low:.3f} is above v's upper bound {old_high:.3f}"
        return (
            f"{what} {m.value:.3f} over {m.window.n} labelled events (#{m.window.start_index}-"
            f"#{m.window.end_index - 1}) regressed below the level it was promoted over: v's holdout "
            f"{metric} {level:.3f}; {bound}"
        )

    def _roll_back(self, m: Metric, bad: ModelVersion, why: str) -> RetrainOutcome | None:
        previous = previous_champion(self.registry.versions(m.model), bad)
        if previous is None:
            return None
        reason = why.replace("v's", f"v{previous.version}'s") + f"; rolled back to v{previous.version}"
        out = RetrainOutcome(
            request_id=rollback_id(m.model, bad.version),
            model=m.model,
            status="rolled_back",
            reason=f"v{bad.version} {reason}",
            version=bad.version,
            metrics={f"live_{m.name}": m.value, "live_n": float(m.window.n)},
            detected_at_index=m.window.end_index - 1,
            detected_at_time=m.window.end_time,
            trained_through_index=m.window.end_index - 1,
        )
        self.registry.record_outcome(m.model, out.request_id, msgspec.to_builtins(out))  # 1.
        if not self._announced(m.model, bad.version):  # 2.
            self._publish(previous, bad, m.window.end_time)
        self.sink.send(self.topics.notifications, m.model.encode(), encode(out), None)  # 3.
        self._flush(f"the rollback notification of {m.model} v{bad.version}")
        self.registry.promote(m.model, previous.version)  # 4.
        self.registry.set_stage(m.model, bad.version, "rolled_back", reason=out.reason)
        self._champions.pop(m.model, None)
        log.warning("model %s: %s", m.model, out.reason)
        self.outcomes.append(out)
        return out

    def _publish(self, to: ModelVersion, bad: ModelVersion, created_at: float) -> None:
        update = ModelUpdate(
            model=to.model,
            version=to.version,
            kind="rollback",
            previous_version=bad.version,
            artifact_uri=to.artifact_uri,
            artifact_sha256=to.sha256,
            metrics=to.metrics,
            triggered_by=rollback_id(to.model, bad.version),
            created_at=created_at,
        )
        self.sink.send(self.topics.models, to.model.encode(), encode(update), created_at)
        self._flush(f"the rollback of {to.model} v{bad.version}")

    def _announced(self, model: str, bad: str) -> bool:
        for rec in self.reader.read_since(self.topics.models, 0.0, -1):
            try:
                u = decode(ModelUpdate, rec.value)
            except InvalidEvent:
                continue
            if u.model == model and u.kind == "rollback" and u.previous_version == bad:
                return True
        return False

    def _flush(self, what: str) -> None:
        left = self.sink.flush()
        if left:
            raise DriftlineError(f"{what}: {left} message(s) not delivered; is the broker reachable?")


def watcher_for(worker: RetrainWorker) -> RollbackWatcher:
    """A watcher over ``worker``'s registry, reader and sink, judging each model by its recipe."""
    r, w = worker.recipes, worker
    return RollbackWatcher(r.settings, r.task, w.topics, w.registry, w.reader, w.sink)


class MetricSource(Protocol):
    """A consumer of the metrics topic (an in-memory bus source, a ``KafkaSource``)."""

    def poll(self, max_records: int, timeout: float = 0.0) -> list[Record]: ...

    def commit(self) -> None: ...


class RollbackRunner:
    """Feeds a watcher from a metrics source and commits what it has decided: offsets are committed
    only once every point read was judged (and any rollback recorded and published), so a kill re-reads
    the points not yet judged. Registry or broker trouble keeps the unjudged points (logged); they are
    judged again, in order, before anything newer is read."""

    def __init__(self, watcher: RollbackWatcher, source: MetricSource, batch: int = 10_000) -> None:
        self.watcher, self.source, self.batch = watcher, source, batch
        self._held: list[Record] = []  # read, not yet judged

    def run_once(self, timeout: float = 0.0) -> list[RetrainOutcome]:
        done: list[RetrainOutcome] = []
        records = self._held or self.source.poll(self.batch, timeout)
        for k, rec in enumerate(records):
            try:
                out = self.watcher.on_record(rec)
            except Exception as exc:  # registry or broker trouble: judged again at the next run
                held = len(records) - k
                log.error("rollback watcher: %s; %d metric point(s) held", exc, held, exc_info=True)
                self._held = records[k:]
                return done
            if out is not None:
                done.append(out)
        self._held = []
        if records:
            try:
                self.source.commit()
            except Exception as exc:  # the coordinator away (a broker restart): the next commit covers it
                log.warning("rollback watcher: committing failed (%s); will commit again", exc)
        return done

    def alongside(self, stop: Callable[[], bool]) -> Callable[[], bool]:
        """``stop`` for a runner loop that also judges the metrics read so far at each turn: one
        thread, so a rollback's registry writes never interleave with a retrain's."""

        def judge_then_stop() -> bool:
            self.run_once()
            return stop()

        return judge_then_stop
