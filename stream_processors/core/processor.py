"""The processor core: a batch of records in, scored events, metrics, alerts and dead letters out.

Pure and transport-agnostic: the in-process runner and the Kafka runner both call
:meth:`ProcessorCore.process` with the records they polled and send what it returns. A record
that fails validation goes through one error callback whose default turns it into a
:class:`~driftline.contracts.DeadLetter` (reason + original bytes); the batch goes on.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal

from threadpoolctl import ThreadpoolController

from detectors import get_detector
from detectors.calibration import DEFAULT_FALSE_ALARMS_PER_100K
from driftline import native
from driftline.config import MonitorSettings, Topics, monitor_settings_for
from driftline.contracts import (
    Alert,
    DeadLetter,
    Label,
    Metric,
    ModelUpdate,
    Scored,
    encode,
)
from driftline.errors import ConfigError, InvalidEvent
from driftline.spec import ModelSpec
from driftline.transport import Record
from stream_processors.core.admission import admit
from stream_processors.core.announcements import Announcements
from stream_processors.core.heads import Items, read_heads, safe_names
from stream_processors.core.join_native import as_native
from stream_processors.core.model_monitor import ModelMonitor, MonitorOutput
from stream_processors.core.reference import load_reference
from stream_processors.core.schema import PredictionHead
from stream_processors.core.scored import encode_scored, without_features
from stream_processors.core.version import error_detector_choice

__all__ = ["CoreOutput", "ErrorAction", "ProcessorCore", "dead_letter_all"]

log = logging.getLogger(__name__)

ErrorAction = Literal["dead_letter", "skip", "raise"]
ErrorHandler = Callable[[Exception, Record, str], ErrorAction]


def _check_detector(settings: MonitorSettings, where: str = "monitor") -> None:
    """Fail at start-up, not on the first label, if the error-stream detector is misconfigured."""
    try:
        name, params = error_detector_choice(settings)
        get_detector(name, **params)
    except (ValueError, TypeError, KeyError) as exc:
        chosen = f"{settings.error_detector!r} with params {settings.error_detector_params}"
        raise ConfigError(f"{where}.error_detector={chosen}: {exc}") from None


_BLAS: list[ThreadpoolController] = []  # made on first use: it looks up the loaded BLAS libraries


def _one_blas_thread() -> Any:
    """Run the block on one BLAS thread: the core's linear algebra is on small matrices (a PCA fit on
    the reference: 2,000 rows x the numeric features), where BLAS threads only contend with the
    runner and other processes -- on a loaded 2-core machine a 2,000 x 150 SVD took 1.9 s on
    OpenBLAS's threads, 0.07 s on one. ~12 us per batch; the process's other BLAS users keep theirs."""
    if not _BLAS:
        _BLAS.append(ThreadpoolController())
    return _BLAS[0].limit(limits=1, user_api="blas")


def dead_letter_all(exc: Exception, record: Record, stage: str) -> ErrorAction:
    """The default error policy: every invalid record goes to the dead-letter topic."""
    return "dead_letter"


@dataclass
class CoreOutput:
    """What one call of the core produced. Every message it makes is bounded: a scored event larger
    than ``max_output_bytes`` is sent without its prediction's features (flagged
    ``features_dropped``), and a dead letter keeps a prefix of its record (:class:`DeadLetter`)."""

    scored: list[Scored] = field(default_factory=list)
    metrics: list[Metric] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    max_output_bytes: int = 900_000

    def extend(self, other: CoreOutput) -> None:
        self.scored += other.scored
        self.metrics += other.metrics
        self.alerts += other.alerts
        self.dead_letters += other.dead_letters

    def messages(self, topics: Topics) -> list[tuple[str, bytes | None, bytes, float | None]]:
        """(topic, key, value, timestamp) to send, keyed by model so a model's events stay ordered."""
        out: list[tuple[str, bytes | None, bytes, float | None]] = []
        limit, add, enc, scored = self.max_output_bytes, out.append, encode_scored, topics.scored
        keys: dict[str, bytes] = {}  # per model, its key (one scored event per label: per record, ~0.2 us)
        for s in self.scored:
            value = enc(s)
            if len(value) > limit:
                value = encode(without_features(s))
            p = s.prediction
            key = keys.get(p.model)
            if key is None:
                key = keys[p.model] = p.model.encode()
            add((scored, key, value, p.event_time))
        for m in self.metrics:
            out.append((topics.metrics, m.model.encode(), encode(m), m.window.end_time))
        for a in self.alerts:
            out.append((topics.alerts, a.model.encode(), encode(a), a.detected_at_time))
        for d in self.dead_letters:
            out.append((topics.dlq, None, encode(d), None))
        return out


def _check_budgets(model: str, spec: ModelSpec, settings: MonitorSettings) -> None:
    """The features' own false-alarm budgets must leave some of the model's to its other streams."""
    total = settings.false_alarms_per_100k or DEFAULT_FALSE_ALARMS_PER_100K
    own = {f: b for f, b in spec.feature_budgets().items() if f in spec.kinds()}
    if own and sum(own.values()) >= total:
        raise ConfigError(
            f"models.{model}.features: the features' own false_alarms_per_100k {own} add up to "
            f"{sum(own.values()):g}, not less than the model's {total:g} (the rest is split over its other "
            f"features and the prediction score): lower them or raise models.{model}.false_alarms_per_100k"
        )


def _undeclared_model(model: str, have_spec: bool) -> None:
    """Once per model (a monitor is made once): its features are guessed, not declared."""
    (log.warning if have_spec else log.info)(
        "model %r is not declared in the monitor spec: its features' types are read off each "
        "version's first prediction; declare it under models: in the spec file (driftline --config)",
        model,
    )


class ProcessorCore:
    """Joins, monitors and alerts, for every model whose events it is given."""

    def __init__(
        self,
        settings: MonitorSettings,
        topics: Topics,
        on_error: ErrorHandler = dead_letter_all,
        announcements: Announcements | None = None,
        models: Mapping[str, ModelSpec] | None = None,
    ) -> None:
        """``announcements``: the versions to monitor (the runner feeds it :meth:`announce`); None
        monitors every version, for a core driven without a models topic (tests, benchmarks).
        ``models``: the monitor spec (``DriftlineSettings.models``): a declared model runs with its
        features, reference and settings over ``settings``; an undeclared one has its features read
        off each version's first prediction (logged once per model). Reference files are read here,
        once: a bad spec fails now (:class:`~driftline.errors.ConfigError`), never at the first event."""
        _check_detector(settings)
        self.specs: dict[str, ModelSpec] = dict(models or {})
        self.model_settings = {m: monitor_settings_for(settings, s) for m, s in self.specs.items()}
        for m, per_model in self.model_settings.items():
            _check_detector(per_model, f"models.{m}")
            _check_budgets(m, self.specs[m], per_model)
        self.references = {m: load_reference(m, s) for m, s in self.specs.items()}
        self.native = native.available()  # (DRIFTLINE_NATIVE: a bad value fails here)
        self._heads: frozenset[bytes] = frozenset()  # keys of models admitted as heads (native_version)
        self.settings = settings
        self.topics = topics
        self.on_error = on_error
        self.announcements = announcements
        self.models: dict[str, ModelMonitor] = {}
        self.partition_of: dict[str, int] = {}  # input partition each model arrives on
        self.records_seen = 0
        # a runner's reader of the models topic (up to its end, announcing what it finds): called only
        # when a batch names a version not announced yet, before any state changes; if it raises,
        # process raises the same exception, nothing changed (see deferred)
        self.refresh_announcements: Callable[[], object] | None = None
        self._refresh_error: BaseException | None = None

    def process(self, records: Sequence[Record]) -> CoreOutput:
        """Every record either reaches the monitors or is handed to ``on_error`` with a reason."""
        with _one_blas_thread():
            return self._process(records)

    def deferred(self, exc: BaseException) -> bool:
        """Whether ``exc``, raised by :meth:`process`, left the batch unprocessed: the models topic
        could not be read (:attr:`refresh_announcements`). The caller retries the whole batch later --
        never record by record, since no record is at fault."""
        return exc is self._refresh_error

    def _process(self, records: Sequence[Record]) -> CoreOutput:
        out = CoreOutput(max_output_bytes=self.settings.max_output_bytes)
        self._refresh_error = None  # (a failed batch's: read by the caller right after it raised)
        preds, labels, newest = self._admit(records, out)
        checked = self.announcements is not None  # only announced versions are monitored
        versions = {m: {p.model_version for p, _ in its} for m, its in preds.items()} if checked else {}
        if versions and self.refresh_announcements is not None:
            self._refresh_if_unannounced(versions)
        self.records_seen += len(records)
        for model, items in preds.items():
            if checked and not (items := self._announced(model, items, versions[model], out)):
                continue
            monitor, read = self._monitor(model), None
            fail = partial(self._fail, out=out)
            if type(items[0][0]) is PredictionHead:  # (all of a model's, or none: admitted by its key)
                items, read = read_heads(monitor, items, newest, fail)
            else:
                items = safe_names(items, fail)
            res = monitor.on_predictions([p for p, _ in items], [r.value for _, r in items], read)
            for pos, reason in res.rejected:
                self._fail(InvalidEvent(f"Prediction: {reason}"), items[pos][1], "validate", out)
            self._collect(res, out)
        for model, labs in labels.items():
            self._collect(self._monitor(model).on_labels(labs), out)
        for model, t in newest.items():  # the clock of models that have state (see _admit)
            mon = self.models.get(model)
            if mon is not None and t > mon.newest_event_time:
                mon.newest_event_time = t
        if self.native and preds:
            self._heads = frozenset(m.encode() for m, mon in self.models.items() if mon.native_version)
        if len(out.dead_letters) > 1:  # in the records' order, whichever step refused each
            out.dead_letters.sort(key=lambda d: (d.topic, d.partition, d.offset))
        return out

    def undeclared(self) -> dict[str, dict[str, int]]:
        """Features sent but not declared in the spec, per declared model: name -> predictions."""
        return {m: dict(mon.undeclared) for m, mon in self.models.items() if mon.spec is not None}

    @property
    def waiting(self) -> int:
        """Events held back by the join until the other input topic is read past them."""
        return sum(mon.joiner.waiting for mon in self.models.values())

    def unmerged(self, partition: int) -> tuple[int, int]:
        """(predictions, labels) read from input ``partition`` and waiting for the other input."""
        counts = [mon.joiner.unmerged() for mon in self.models_in(partition).values()]
        return sum(c[0] for c in counts), sum(c[1] for c in counts)

    def drain(self) -> CoreOutput:
        """Join what waits as if both input topics had ended (see :mod:`~.join`): for an input that
        has ended (a replay, the demo) or that has been idle for a while (the runner decides)."""
        out = CoreOutput(max_output_bytes=self.settings.max_output_bytes)
        with _one_blas_thread():
            for mon in self.models.values():
                self._collect(mon.drain(), out)
        return out

    def process_each(self, records: Sequence[Record]) -> CoreOutput:
        """Process ``records`` one at a time; one that raises goes to ``on_error`` (stage "process").

        For a runner whose :meth:`process` of a whole batch raised -- a bug, not bad input, since
        bad input is dead-lettered inside :meth:`process` -- so that one record cannot stop a
        partition. It runs on the same state, without rolling back what the failed call had already
        applied: records that call had absorbed are then duplicates (dropped and counted, so never
        counted twice) and the outputs they made in it are lost. Rolling back would need a copy of
        every model's state before each batch, on the hot path, for a case that should not happen.
        """
        out = CoreOutput(max_output_bytes=self.settings.max_output_bytes)
        for rec in records:
            try:
                out.extend(self.process([rec]))
            except InvalidEvent:
                raise  # on_error said "raise"
            except Exception as exc:
                if self.deferred(exc):
                    raise
                self._fail(exc, rec, "process", out, f"processing raised {type(exc).__name__}: {exc}")
        return out

    def _admit(
        self, records: Sequence[Record], out: CoreOutput
    ) -> tuple[dict[str, Items], dict[str, list[Label]], dict[str, float]]:
        """:func:`~.admission.admit`: the admitted predictions and labels by model, and each model's
        newest admitted event time; the others go to the error policy."""
        models = self.models
        return admit(
            records,
            (self.topics.predictions, self.topics.labels),
            self.settings.max_future_skew_s,
            lambda m: -math.inf if (mon := models.get(m)) is None else mon.newest_event_time,
            self.partition_of,
            lambda exc, rec, stage: self._fail(exc, rec, stage, out),
            self._heads,
        )

    def _refresh_if_unannounced(self, versions: Mapping[str, set[str]]) -> None:
        """Read the models topic if one of a batch's ``versions`` (per model) is not announced (yet): an
        announcement made before those predictions were produced is then known when they are processed."""
        table, refresh = self.announcements, self.refresh_announcements
        if (
            table is not None
            and refresh is not None
            and any(table.unannounced(m, v) for m, v in versions.items())
        ):
            try:
                refresh()
            except Exception as exc:
                self._refresh_error = exc
                raise

    def announce(self, update: ModelUpdate) -> None:
        """Monitor ``update``'s (model, version) from now on (a no-op without announcements)."""
        if self.announcements is not None:
            self.announcements.announce(update)

    def _announced(self, model: str, items: Items, versions: set[str], out: CoreOutput) -> Items:
        """The predictions of announced versions (``versions``: those ``items`` name); the others are
        dead-lettered (the reason says how to announce them) before they can create state -- invented
        versions never evict a live one."""
        assert self.announcements is not None
        missing = self.announcements.unannounced(model, versions)
        if not missing:
            return items
        for p, rec in items:
            if p.model_version in missing:
                self._fail(InvalidEvent(f"Prediction: {missing[p.model_version]}"), rec, "validate", out)
        return [item for item in items if item[0].model_version not in missing]

    def drift_levels(self) -> list[tuple[str, str, str, str | None, float]]:
        """(model, version, alert type, feature, level) of every whole-traffic drift stream: how close
        each is to an alert now (CUSUM / threshold), for gauges read between alerts."""
        return [
            (model, version, kind, feature, level)
            for model, mon in self.models.items()
            for version, vm in mon.versions.items()
            for kind, feature, level in vm.features.levels()
        ]

    # -- state by input partition (for checkpoints and rebalances) -----------------------------
    def models_in(self, partition: int) -> dict[str, ModelMonitor]:
        return {m: mon for m, mon in self.models.items() if self.partition_of.get(m) == partition}

    def adopt(self, partition: int, models: dict[str, ModelMonitor]) -> None:
        """Take over restored state for the models of ``partition``, under the spec in force now (a
        model whose spec changed since the checkpoint applies it to the versions it sees next)."""
        for model, mon in models.items():
            settings = self.model_settings.get(model, self.settings)
            if mon.respec(settings, self.specs.get(model), self.references.get(model)):
                log.warning(
                    "model %r: restored from a checkpoint taken under another spec or settings; "
                    "new versions follow the current spec, monitored versions keep their state",
                    model,
                )
            mon.joiner = as_native(mon.joiner)  # (a checkpoint of the Python join: see join_native)
            self.models[model] = mon
            self.partition_of[model] = partition

    def release(self, partition: int) -> None:
        """Forget the models of a partition this instance no longer owns."""
        for model in list(self.models_in(partition)):
            del self.models[model]
            del self.partition_of[model]

    def _monitor(self, model: str) -> ModelMonitor:
        mon = self.models.get(model)
        if mon is None:
            spec = self.specs.get(model)
            if spec is None:
                _undeclared_model(model, bool(self.specs))
            settings = self.model_settings.get(model, self.settings)
            mon = self.models[model] = ModelMonitor(model, settings, spec, self.references.get(model))
        return mon

    @staticmethod
    def _collect(res: MonitorOutput, out: CoreOutput) -> None:
        out.scored += res.scored
        out.metrics += res.metrics
        out.alerts += res.alerts

    def _fail(
        self, exc: Exception, rec: Record, stage: str, out: CoreOutput, reason: str | None = None
    ) -> None:
        action = self.on_error(exc, rec, stage)
        if action == "raise":
            raise exc
        if action == "dead_letter":
            out.dead_letters.append(DeadLetter.of_record(rec, exc, stage, reason))
