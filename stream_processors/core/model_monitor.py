"""Monitoring state for one model: the label join, and one :class:`VersionMonitor` per version.

Everything here is pure: batches of decoded events in, scored events, metrics and alerts out.
All state for one model lives in one :class:`ModelMonitor`, so partitioning topics by model
keeps each model's state in one processor instance.

A prediction reaches the statistics only if it is new (not a replay: see the join's clock in
:mod:`~stream_processors.core.join`) and fits its version's schema: every feature of the version
present (``null`` for a missing value), numbers where the version has numbers, and no number larger
in magnitude than :data:`MAX_ABS_NUMBER` (one such value would swamp a window's mean and variance).
Any other prediction is rejected with a reason and leaves no trace in the state.

>>> from driftline.config import MonitorSettings
>>> from driftline.contracts import Label, Prediction
>>> monitor = ModelMonitor("churn", MonitorSettings())
>>> p = Prediction(prediction_id="a", model="churn", model_version="1", event_time=0.0,
...                features={"age": 41.0}, prediction=1, score=0.8)
>>> out = monitor.on_predictions([p, p])  # the second is a replay: never counted twice
>>> monitor.joiner.counts["duplicate_predictions"], list(monitor.versions)
(1, ['1'])
>>> out = monitor.on_labels([Label(prediction_id="a", model="churn", event_time=1.0, label=1)])
>>> out.scored, [s.label for s in monitor.drain().scored]  # a later prediction, or a drain, merges it
([], [1])
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial

import numpy as np

from detectors import get_task
from detectors.calibration import DEFAULT_FALSE_ALARMS_PER_100K
from driftline.config import MonitorSettings
from driftline.contracts import Alert, Label, Metric, Prediction, Scored
from driftline.spec import ModelSpec
from stream_processors.core.join import JoinHealth
from stream_processors.core.join_native import Joiner, new_joiner
from stream_processors.core.reference import ReferenceRows, pinned_reference
from stream_processors.core.schema import Kind, PredictionHead, columns, infer_kinds, native_columns
from stream_processors.core.scored import hold
from stream_processors.core.segments import VersionSegments, level_settings
from stream_processors.core.version import VersionMonitor

__all__ = ["MAX_ABS_NUMBER", "ModelMonitor", "MonitorOutput"]

log = logging.getLogger(__name__)

MAX_ABS_NUMBER = 1e100
"""Largest magnitude of a numeric feature: far beyond any measurement, far below float overflow."""


@dataclass
class MonitorOutput:
    scored: list[Scored] = field(default_factory=list)
    metrics: list[Metric] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (position in the batch, reason)


class ModelMonitor:
    """One model's join and versions. With a ``spec`` (:class:`~driftline.spec.ModelSpec`) every
    version monitors the declared features; without one, a version's kinds are read off its first
    prediction (:func:`~.schema.infer_kinds`), as before specs existed."""

    newest_event_time = float("-inf")  # newest admitted event time (a class default: old checkpoints)
    spec: ModelSpec | None = None  # class default: checkpoints from before specs
    reference_rows: ReferenceRows | None = None  # the spec's reference file, read at start-up
    undeclared: dict[str, int]  # features sent but not declared -> predictions carrying them (spec only)
    segments: dict[str, VersionSegments] | None = None  # per version, with the spec's segments
    # the version whose predictions the processor may decode as heads, their features read by the
    # native decoder (:meth:`native_columns`); derived, so class defaults do for old checkpoints
    native_version: str | None = None
    native_declined: dict[str, int] = {}  # noqa: RUF012 -- replaced, never mutated (see declined)

    def __init__(
        self,
        model: str,
        settings: MonitorSettings,
        spec: ModelSpec | None = None,
        reference_rows: ReferenceRows | None = None,
    ) -> None:
        """``reference_rows``: the spec's reference file (:func:`~.reference.load_reference`)."""
        self.model = model
        self.settings = settings
        self.spec = spec
        self.reference_rows = reference_rows
        self.undeclared = {}
        self._known = set() if spec is None else set(spec.features)
        self.task = get_task(settings.task, **({} if spec is None else spec.task_params()))
        self.joiner: Joiner = new_joiner(settings.label_lateness_s, settings.max_pending)
        self.versions: dict[str, VersionMonitor] = {}
        self.n_predictions = 0
        if spec is not None and spec.segments:
            self.segments = {}

    def respec(self, settings: MonitorSettings, spec: ModelSpec | None, rows: ReferenceRows | None) -> bool:
        """Take the spec and settings in force now, after a restore from a checkpoint written under
        others: versions that appear from now on follow them; versions already monitored keep their
        state (their detectors were calibrated on the old declaration). True if anything changed."""
        self.reference_rows = rows
        if spec == self.spec and settings == self.settings:
            return False
        self.settings, self.spec = settings, spec
        self._known = set() if spec is None else set(spec.features)
        self.task = get_task(settings.task, **({} if spec is None else spec.task_params()))
        if spec is not None and spec.segments and self.segments is None:
            self.segments = {}
        return True

    # -- predictions ---------------------------------------------------------------------------
    def on_predictions(
        self,
        preds: Sequence[Prediction | PredictionHead],
        raws: list[bytes] | None = None,
        read: dict[str, np.ndarray] | None = None,
    ) -> MonitorOutput:
        """``raws``: the bytes each prediction was decoded from, which the join then holds instead of
        its features (:mod:`~.scored`) and its scored event carries. ``read``: the batch's columns as
        :meth:`native_columns` read them (``preds`` are then heads, and whole predictions where it did
        not read the record: their cells are filled here), instead of building them from ``preds``."""
        out = MonitorOutput()
        accepted: list[tuple[Prediction | PredictionHead, int]] = []
        segment_columns = self.spec.segments if self.spec is not None else ()  # read at the join
        if self.spec is not None:  # (a head carries exactly its version's features: all declared)
            self._note_undeclared([p for p in preds if type(p) is Prediction] if read is not None else preds)  # type: ignore[arg-type]
        by_version = self.joiner.new_by_version(preds)  # type: ignore[arg-type]
        for version, positions in by_version.items():
            vm = self._version(version, preds[positions[0]])  # type: ignore[arg-type]
            batch = [preds[i] for i in positions]
            if read is None:
                cols, bad = columns(batch, vm.kinds)  # type: ignore[arg-type]
                named = True
            else:  # the rows decoded whole: their cells are empty in what the decoder read
                whole = [j for j, p in enumerate(batch) if type(p) is Prediction]
                cols, bad = _filled(_rows(read, positions, len(preds)), batch, whole, vm.kinds)
                named = bool(whole)
            bad = _unfit(batch, vm.kinds, cols, bad, named=named)
            good = positions
            if bad:
                out.rejected += [(positions[j], reason) for j, reason in bad]
                keep = np.ones(len(positions), dtype=bool)
                keep[[j for j, _ in bad]] = False
                cols = {k: v[keep] for k, v in cols.items()}
                good = [i for i, k in zip(positions, keep, strict=True) if k]
            first = self.n_predictions
            index = first + np.arange(len(good))
            self.n_predictions += len(good)
            times = np.fromiter((preds[i].event_time for i in good), float, len(good))
            held = [preds[i] for i in good]
            if raws is not None:  # the join holds the record's bytes (see scored.py)
                held = [hold(p, raws[i], segment_columns) for p, i in zip(held, good, strict=True)]
            accepted += zip(held, range(first, first + len(good)), strict=True)
            out.alerts += vm.on_predictions(cols, index, times)
            if self.segments is not None and version in self.segments:
                batch = [preds[i] for i in good] if bad else batch
                # (whole predictions: a version with segments is never read as heads)
                out.alerts += self.segments[version].on_predictions(batch, cols, index, times)  # type: ignore[arg-type]
        out.scored += self.joiner.add_predictions(accepted)  # type: ignore[arg-type]
        self._on_merged(out)
        if by_version:
            self.native_version = self._native_candidate(by_version)
        return out

    def _native_candidate(self, by_version: dict[str, list[int]]) -> str | None:
        """The version whose next batches :meth:`native_columns` may read: the only one of this batch, if
        it has no segments (the join keeps their columns' values, which heads lack)."""
        if len(by_version) != 1:
            return None
        (version,) = by_version
        vm = self.versions.get(version)
        if vm is None or (self.segments is not None and version in self.segments):
            return None
        return None if self.native_declined.get(version, 0) >= NATIVE_DECLINES else version

    def declined(self, version: str) -> None:
        """The native decoder could not read most of a batch of ``version`` (its features are not of the
        plainest kind, or in another order): after :data:`NATIVE_DECLINES` such batches its records are
        decoded whole from the start, so that such a stream does not pay for both decoders."""
        self.native_version = None
        self.native_declined = {**self.native_declined, version: self.native_declined.get(version, 0) + 1}

    def native_columns(
        self, heads: list[PredictionHead], raws: list[bytes]
    ) -> tuple[dict[str, np.ndarray], list[int]] | None:
        """A batch of heads of :attr:`native_version`: its columns as the native decoder reads them from
        the records, and the positions of those it did not read (:func:`~.schema.native_columns`);
        None if they are not all of that version: the caller then decodes the records whole."""
        version = self.native_version
        vm = None if version is None else self.versions.get(version)
        if vm is None or any(p.model_version != version for p in heads):
            return None
        return native_columns(heads, raws, vm.kinds)

    def _version(self, version: str, first: Prediction) -> VersionMonitor:
        """The version's monitor (its schema read off its first prediction), now the most recent."""
        vm = self.versions.get(version)
        if vm is None:
            kinds = infer_kinds(first) if self.spec is None else self.spec.kinds()
            columns = [] if self.spec is None else self.spec.segments
            settings = level_settings(self.settings, len(columns))  # the budget's share of the whole traffic
            vm = self.versions[version] = VersionMonitor(self.model, version, kinds, settings, self.task)
            if self.segments is not None and self.spec is not None and columns:
                self.segments[version] = VersionSegments(
                    self.model, version, kinds, settings, self.task, columns, self.spec.max_segment_values
                )
            self._declare(version, vm)
            if self.segments is not None and version in self.segments:  # at the whole traffic's level budget
                self.segments[version].budgets = dict(vm.features.budgets)
            self._evict_old_versions()
        self.versions[version] = self.versions.pop(version)  # most recently seen last
        return vm

    def _declare(self, version: str, vm: VersionMonitor) -> None:
        """What the spec declares for a new version: its features' own budgets (scaled as the
        version's share of the model's budget is) and its reference (:mod:`~.reference`)."""
        spec = self.spec
        if spec is None:
            return
        scale = vm.features.total / (self.settings.false_alarms_per_100k or DEFAULT_FALSE_ALARMS_PER_100K)
        budgets = {f: b * scale for f, b in spec.feature_budgets().items()}
        rows = self.reference_rows
        pinned = None if spec.reference is None else spec.reference.version
        if pinned is not None:
            other = self.versions.get(pinned)
            known = None if other is None else other.features.reference_rows()
            rows = pinned_reference(self.model, version, pinned, known)
        vm.features.declare(budgets, rows)

    def _note_undeclared(self, preds: list[Prediction]) -> None:
        """Count the features sent but not declared; log each name once per model, with the fix.
        One set comparison per prediction; names beyond the first 100 are not tracked."""
        known = self._known
        found: dict[str, int] | None = None
        for p in preds:
            if not p.features.keys() <= known:
                found = found or {}
                for name in p.features.keys() - known:
                    found[name] = found.get(name, 0) + 1
        if not found:
            return
        new = [n for n in found if n not in self.undeclared][: max(0, 100 - len(self.undeclared))]
        if new:
            log.warning(
                "model %r: feature(s) %s are sent but not declared in the monitor spec, so not monitored; "
                "declare them under models.%s.features (numeric, categorical, or ignore to silence this)",
                self.model,
                sorted(new),
                self.model,
            )
        for name, n in found.items():
            if name in self.undeclared or name in new:
                self.undeclared[name] = self.undeclared.get(name, 0) + n

    def _evict_old_versions(self) -> None:
        """Keep the state of the ``max_versions`` most recently seen versions of the model."""
        while len(self.versions) > self.settings.max_versions:
            old = next(iter(self.versions))
            del self.versions[old]
            if self.segments is not None:
                self.segments.pop(old, None)

    # -- labels --------------------------------------------------------------------------------
    def on_labels(self, labels: list[Label]) -> MonitorOutput:
        out = MonitorOutput(scored=self.joiner.add_labels(labels))
        self._on_merged(out)
        return out

    def drain(self) -> MonitorOutput:
        """Merge what waits for the other input topic as if both had ended (see :mod:`~.join`)."""
        out = MonitorOutput(scored=self.joiner.drain())
        self._on_merged(out)
        return out

    def _on_merged(self, out: MonitorOutput) -> None:
        """Hand each version the joins and the predictions the join just merged, in merge order: the
        labelled statistics and the label-free estimate then advance along one sequence."""
        merged, before, scored = self.joiner.merged, self.joiner.joins_before, out.scored
        versions = {p.model_version for p in merged} | {s.prediction.model_version for s in scored}
        for version in versions:
            vm = self.versions.get(version)
            if vm is None:
                continue  # a version no longer monitored (evicted): joined, not scored
            if len(versions) == 1:  # the usual case: no need to pick the version's rows out
                at, mine, joins = list(range(len(scored))), merged, before
            else:
                at = [k for k, s in enumerate(scored) if s.prediction.model_version == version]
                picked = [k for k, p in enumerate(merged) if p.model_version == version]
                mine, joins = [merged[k] for k in picked], [before[k] for k in picked]
            scores = np.array([np.nan if p.score is None else p.score for p in mine], dtype=float)
            # how many of the version's merged predictions precede each of its joins
            seen = np.searchsorted(np.asarray(joins, dtype=np.int64), np.asarray(at, dtype=np.int64), "right")
            alerts, metrics = vm.on_merged(
                [scored[k] for k in at] if len(versions) > 1 else scored,
                scores,
                seen,
                partial(_health, self.joiner, at),
            )
            out.alerts += alerts
            out.metrics += metrics
            if self.segments is not None and version in self.segments:
                alerts, metrics = self.segments[version].on_merged([scored[k] for k in at], at, mine, joins)
                out.alerts += alerts
                out.metrics += metrics


def _health(joiner: Joiner, at: list[int], j: int) -> JoinHealth:
    """The join's counts right after the version's ``j``-th join (call position ``at[j]``)."""
    return joiner.health_at(at[j])


NATIVE_DECLINES = 3  # batches of a version mostly unread by the native decoder before it is no longer tried


def _rows(cols: dict[str, np.ndarray], positions: list[int], n: int) -> dict[str, np.ndarray]:
    """``cols`` (``n`` rows) at ``positions``: all of them, or a copy of those."""
    return cols if len(positions) == n else {k: v[positions] for k, v in cols.items()}


def _filled(
    cols: dict[str, np.ndarray],
    batch: list[Prediction | PredictionHead],
    whole: list[int],
    kinds: dict[str, Kind],
) -> tuple[dict[str, np.ndarray], list[tuple[int, str]]]:
    """The native decoder's columns of ``batch`` with the rows it did not read (``whole``: decoded
    whole since) filled in by :func:`~.schema.columns`, and the bad ones among those."""
    if not whole:
        return cols, []
    sub, bad = columns([batch[j] for j in whole], kinds)  # type: ignore[misc]
    for name, col in sub.items():
        cols[name][whole] = col  # (the batch's own arrays)
    return cols, [(whole[k], why) for k, why in bad]


def _unfit(
    preds: Sequence[Prediction | PredictionHead],
    kinds: dict[str, Kind],
    cols: dict[str, np.ndarray],
    bad: list[tuple[int, str]],
    named: bool = True,
) -> list[tuple[int, str]]:
    """``bad`` (from :func:`columns`) plus the rows missing a feature of the version or holding a
    number out of range; one reason per row, in row order.

    Columnar: a missing feature is an empty cell (NaN or None) in ``cols``, so only rows with an
    empty cell -- none in a stream without nulls -- have their feature names looked at. Not
    ``named``: every row is a head, whose record held every feature (``driftline/native.py``)."""
    why = dict(bad)
    empty = np.zeros(len(preds), dtype=bool)
    for name, kind in kinds.items():
        col = cols[name]
        if kind == "numeric":
            if named:
                empty |= np.isnan(col)
            for j in np.flatnonzero(np.abs(col) > MAX_ABS_NUMBER).tolist():
                why.setdefault(j, f"feature {name!r} is out of range: |{col[j]:.3g}| > {MAX_ABS_NUMBER:g}")
        elif named:
            empty |= col == None  # noqa: E711 (elementwise: the cells holding None)
    names = kinds.keys()
    for j in np.flatnonzero(empty).tolist():
        p = preds[j]
        if type(p) is not Prediction:  # a head: its record held every feature (driftline/native.py)
            continue
        features = p.features
        if j not in why and not features.keys() >= names:
            missing = sorted(names - features.keys())
            why[j] = (
                f"missing feature(s) {missing[:10]} of this model version (send null for a missing value)"
            )
    return sorted(why.items())
