"""The shadow period: a challenger that won its holdout is tried on live traffic before promotion.

With ``promotion.shadow_labelled: N`` (0: off) a winning challenger is registered with stage
``challenger`` (and the registry alias of that name) instead of being promoted, and announced as
:class:`~driftline.contracts.ModelUpdate` ``kind="registered", shadow=True``: the processor monitors
it, serving scores every request with it too and logs its answers as shadow predictions
(:mod:`producers.shadow`), each joined with the request's label. The :class:`ShadowJudge` pairs the
first ``N`` labelled shadow predictions with the champion's answers to the same requests (from the
scored topic) and applies the holdout's rule to them (:mod:`retrain_worker.evidence`: the paired
improvement must clear ``min_improvement`` and its one-sided bound zero): the challenger is then
promoted (``kind="promoted"``), or rejected -- its stage ``rejected`` with the reason, the shadow
period ended (``kind="registered", shadow=False``) and on-call notified.

The decision is recorded first (a retrain outcome keyed ``shadow-<model>-v<version>``, the first
decision stands), so a judge started again never decides twice; it is made when a metric point of the
challenger arrives (the processor emits them as shadow predictions are labelled).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import msgspec
import numpy as np

from detectors.tasks import Task
from driftline.config import RetrainSettings, Topics
from driftline.contracts import Metric, ModelUpdate, RetrainOutcome, Scored, decode, encode
from driftline.errors import DriftlineError, InvalidEvent
from driftline.registry import ModelRegistry, ModelVersion
from driftline.transport import Sink, WindowReader
from retrain_worker.evidence import paired_evidence

__all__ = ["SHADOW_ALIAS", "SHADOW_SUFFIX", "ShadowJudge", "begin_shadow", "shadow_update"]

log = logging.getLogger(__name__)

SHADOW_ALIAS = "challenger"
SHADOW_SUFFIX = "~shadow"  # as producers.shadow.SHADOW_SUFFIX (peers do not import each other)


def shadow_update(mv: ModelVersion, champion: str, created_at: float, *, shadow: bool = True) -> ModelUpdate:
    """The announcement that starts (or, ``shadow=False``, ends) ``mv``'s shadow period."""
    return ModelUpdate(
        model=mv.model,
        version=mv.version,
        kind="registered",
        shadow=shadow,
        previous_version=champion,
        artifact_uri=mv.artifact_uri,
        artifact_sha256=mv.sha256,
        metrics=mv.metrics,
        triggered_by=mv.triggered_by,
        created_at=created_at,
    )


def begin_shadow(
    registry: ModelRegistry, sink: Sink, topics: Topics, mv: ModelVersion, champion: str, created_at: float
) -> None:
    """Point the ``challenger`` alias at ``mv`` and announce its shadow period (serving starts
    scoring with it; the processor monitors it)."""
    registry.set_alias(mv.model, SHADOW_ALIAS, mv.version)
    sink.send(topics.models, mv.model.encode(), encode(shadow_update(mv, champion, created_at)), created_at)
    left = sink.flush()
    if left:
        raise DriftlineError(
            f"the shadow announcement of {mv.model} v{mv.version}: {left} message(s) not delivered"
        )


class ShadowJudge:
    """Decides shadow periods; see the module docstring."""

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

    def on_metric(self, m: Metric) -> RetrainOutcome | None:
        """Judge ``m``'s version if it is a challenger in shadow with enough labelled pairs."""
        challenger = self.registry.alias(m.model, SHADOW_ALIAS)
        if challenger is None or challenger.version != m.model_version or challenger.stage != "challenger":
            return None
        s, task = self.settings(m.model), self.task(m.model)
        champion = self.registry.champion(m.model)
        y, old, new = self._pairs(challenger, champion.version)
        if len(y) < s.shadow_labelled:
            return None
        n = s.shadow_labelled
        ev = paired_evidence(task, y[:n], champion=old[:n], challenger=new[:n], confidence=s.confidence)
        wins = ev.clears(s.min_improvement)
        verdict = "won" if wins else "did not win"
        reason = f"v{challenger.version} {verdict} its shadow period: " + ev.reason(
            f"v{challenger.version}", f"v{champion.version}", where="labelled shadow predictions"
        )
        out = RetrainOutcome(
            request_id=f"shadow-{m.model}-v{challenger.version}",
            model=m.model,
            status="promoted" if wins else "rejected",
            reason=reason,
            version=challenger.version,
            metrics={f"shadow_{k}": v for k, v in ev.metrics().items()},
            detected_at_index=m.window.end_index - 1,
            detected_at_time=m.window.end_time,
        )
        if not self.registry.record_outcome(m.model, out.request_id, msgspec.to_builtins(out)):
            log.warning("model %s: the shadow period of v%s was decided before", m.model, challenger.version)
        self._apply(out, challenger, champion, m.window.end_time)
        log.info("model %s: %s", m.model, reason)
        return out

    def _apply(self, out: RetrainOutcome, ch: ModelVersion, champion: ModelVersion, at: float) -> None:
        update = shadow_update(ch, champion.version, at, shadow=False)  # ends the period ...
        if out.status == "promoted":  # ... by promoting the challenger
            update = msgspec.structs.replace(update, kind="promoted")
        self.sink.send(self.topics.models, ch.model.encode(), encode(update), at)
        if out.status == "rejected":  # on-call hears of it: the drift stays unresolved
            self.sink.send(self.topics.notifications, ch.model.encode(), encode(out), None)
        left = self.sink.flush()
        if left:
            what = f"the shadow decision on {ch.model} v{ch.version}"
            raise DriftlineError(f"{what}: {left} message(s) not delivered; is the broker reachable?")
        self.registry.set_alias(ch.model, SHADOW_ALIAS, None)
        if out.status == "promoted":
            self.registry.promote(ch.model, ch.version)
        else:
            self.registry.set_stage(ch.model, ch.version, "rejected", reason=out.reason)

    def _pairs(self, ch: ModelVersion, champion: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(labels, champion's predictions, challenger's) of the requests both answered, in the
        order the shadow predictions were labelled."""
        since = float((ch.validated_on or {}).get("end_time", 0.0))
        old: dict[str, Any] = {}
        shadow: list[tuple[str, Any, Any]] = []
        for rec in self.reader.read_since(self.topics.scored, since, -1):
            try:
                s = decode(Scored, rec.value)
            except InvalidEvent:
                continue
            p = s.prediction
            if p.model != ch.model:
                continue
            if p.model_version == ch.version and p.prediction_id.endswith(SHADOW_SUFFIX):
                shadow.append((p.prediction_id.removesuffix(SHADOW_SUFFIX), s.label, p.prediction))
            elif p.model_version == champion:
                old[p.prediction_id] = p.prediction
        both = [(label, old[pid], new) for pid, label, new in shadow if pid in old]
        if not both:
            return np.array([]), np.array([]), np.array([])
        y, a, b = (np.array(col) for col in zip(*both, strict=True))
        return y, a, b
