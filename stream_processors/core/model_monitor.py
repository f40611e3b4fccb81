"""Monitoring state for one model: join, and per version feature drift, quality and error drift.

Everything here is pure: batches of decoded events in, scored events, metrics and alerts out.
All state for one model lives in one :class:`ModelMonitor`, so partitioning topics by model
keeps each model's state in one processor instance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from detectors import ExpectedAccuracy, FeatureDrift, FeatureSetDrift, get_detector
from detectors.base import StreamDetector
from driftline.config import MonitorSettings
from driftline.contracts import Alert, AlertType, Label, Metric, Prediction, Scored, Window, alert_id_for
from stream_processors.core.join import LabelJoiner
from stream_processors.core.performance import RollingPerformance, is_positive

__all__ = ["ModelMonitor", "MonitorOutput", "SCORE_COLUMN"]

SCORE_COLUMN = "prediction_score"
Kind = Literal["numeric", "categorical"]


@dataclass
class MonitorOutput:
    scored: list[Scored] = field(default_factory=list)
    metrics: list[Metric] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (position in the batch, reason)


class _RowClock:
    """Maps a version's row numbers (as its drift detector counts them) to arrival index and time."""

    def __init__(self) -> None:
        self._chunks: list[tuple[int, np.ndarray, np.ndarray]] = []
        self.rows = 0

    def add(self, index: np.ndarray, time: np.ndarray) -> None:
        self._chunks.append((self.rows, index, time))
        self.rows += index.size

    def window(self, start: int, end: int) -> Window:
        lo, hi = self._at(start), self._at(end - 1)
        return Window(start_index=lo[0], end_index=hi[0] + 1, start_time=lo[1], end_time=hi[1], n=end - start)

    def forget_before(self, row: int) -> None:
        while len(self._chunks) > 1 and self._chunks[1][0] <= row:
            self._chunks.pop(0)

    def _at(self, row: int) -> tuple[int, float]:
        for start, idx, t in reversed(self._chunks):
            if start <= row:
                k = min(row - start, idx.size - 1)
                return int(idx[k]), float(t[k])
        start, idx, t = self._chunks[0]
        return int(idx[0]), float(t[0])


class _VersionState:
    def __init__(self, version: str, kinds: dict[str, Kind], settings: MonitorSettings) -> None:
        self.version = version
        self.kinds = kinds
        self.drift = FeatureSetDrift(
            {**kinds, SCORE_COLUMN: "numeric"},
            reference_size=settings.reference_size,
            window_size=settings.window_size,
            false_alarms_per_100k=settings.false_alarms_per_100k,
        )
        self.clock = _RowClock()
        self.perf = RollingPerformance(settings.performance_window)
        self.errors: StreamDetector = get_detector(settings.error_detector, **settings.error_params())
        self.baseline: float | None = None
        # label-free: expected accuracy from the scores, calibrated on the first labelled window
        self.expected = ExpectedAccuracy(window_size=settings.performance_window)
        self.newest_labelled = -1
        self.reference: Window | None = None  # the reference rows, as arrival indices and times
        self.active: set[tuple[str, str | None]] = set()  # (alert type, feature) currently firing
        self.windows_done = 0
        self.scored_since_metrics = 0


class ModelMonitor:
    def __init__(self, model: str, settings: MonitorSettings) -> None:
        self.model = model
        self.settings = settings
        self.joiner = LabelJoiner(settings.label_lateness_s, settings.max_pending)
        self.versions: dict[str, _VersionState] = {}
        self.n_predictions = 0

    # -- predictions ---------------------------------------------------------------------------
    def on_predictions(self, preds: list[Prediction]) -> MonitorOutput:
        out = MonitorOutput()
        by_version: dict[str, list[int]] = {}
        is_new, seen = self.joiner.is_new, set()
        for pos, p in enumerate(preds):
            pid = p.prediction_id
            if not is_new(pid) or pid in seen:  # replays never reach the statistics
                self.joiner.counts["duplicate_predictions"] += 1
                continue
            seen.add(pid)
            by_version.setdefault(p.model_version, []).append(pos)
        accepted: list[tuple[Prediction, int]] = []
        for version, positions in by_version.items():
            vs = self.versions.get(version)
            if vs is None:
                vs = self.versions[version] = _VersionState(
                    version, _infer_kinds(preds[positions[0]]), self.settings
                )
                self._evict_old_versions()
            self.versions[version] = self.versions.pop(version)  # most recently seen last
            cols, bad = _columns([preds[i] for i in positions], vs.kinds)
            good = positions
            if bad:
                out.rejected += [(positions[j], reason) for j, reason in bad]
                keep = np.ones(len(positions), dtype=bool)
                keep[[j for j, _ in bad]] = False
                cols = {k: v[keep] for k, v in cols.items()}
                good = [i for i, k in zip(positions, keep, strict=True) if k]
            index = self.n_predictions + np.arange(len(good))
            self.n_predictions += len(good)
            times = np.fromiter((preds[i].event_time for i in good), float, len(good))
            vs.clock.add(index, times)
            if vs.reference is None and vs.clock.rows >= self.settings.reference_size:
                vs.reference = vs.clock.window(0, self.settings.reference_size)
            accepted += [(preds[i], int(k)) for i, k in zip(good, index, strict=True)]
            score = cols[SCORE_COLUMN]
            vs.expected.update(score[~np.isnan(score)])
            out.alerts += self._drift_alerts(vs, vs.drift.update(cols))
        out.scored += self.joiner.add_predictions(accepted)
        self._on_scored(out)
        return out

    def _evict_old_versions(self) -> None:
        """Keep the state of the ``max_versions`` most recently seen versions of the model."""
        while len(self.versions) > self.settings.max_versions:
            del self.versions[next(iter(self.versions))]

    def _drift_alerts(self, vs: _VersionState, flags: list[FeatureDrift]) -> list[Alert]:
        s = self.settings
        done = max(0, (vs.drift.rows_seen - s.reference_size) // s.window_size)
        if done == vs.windows_done:
            return []
        vs.windows_done = done
        latest_end = s.reference_size + done * s.window_size
        flagged = {f.feature for f in flags if f.window_end == latest_end}
        for key in [k for k in vs.active if k[0] in ("data_drift", "prediction_drift")]:
            if (key[1] or SCORE_COLUMN) not in flagged:
                vs.active.discard(key)  # the feature came back: re-arm
        alerts = []
        for f in flags:
            kind: AlertType = "prediction_drift" if f.feature == SCORE_COLUMN else "data_drift"
            feature = None if f.feature == SCORE_COLUMN else f.feature
            if (kind, feature) in vs.active:
                continue
            vs.active.add((kind, feature))
            win = vs.clock.window(f.window_start, f.window_end)
            value = f.p_value if f.compares == "p_value" and f.p_value is not None else f.statistic
            what = f"{feature or 'prediction score'}: {f.test}={f.statistic:.4g}"
            moved = f" ({f.category} share {f.effect:+.3f})" if f.category else f" (mean {f.effect:+.2f} sd)"
            alerts.append(
                Alert(
                    alert_id=alert_id_for(self.model, vs.version, kind, feature, win.start_index),
                    type=kind,
                    model=self.model,
                    model_version=vs.version,
                    feature=feature,
                    statistic=f"{f.test}_{f.compares}",
                    value=float(value),
                    threshold=float(f.threshold),
                    p_value=f.p_value,
                    effect=float(f.effect),
                    direction=f.direction,
                    window=win,
                    reference=vs.reference,
                    detected_at_index=win.end_index - 1,
                    detected_at_time=win.end_time,
                    message=f"{what}{moved}, psi={f.psi:.3f}, window {win.start_index}..{win.end_index - 1}",
                )
            )
        vs.clock.forget_before(vs.drift.rows_seen - 2 * s.window_size)  # after the windows were mapped
        return alerts

    # -- labels --------------------------------------------------------------------------------
    def on_labels(self, labels: list[Label]) -> MonitorOutput:
        out = MonitorOutput(scored=self.joiner.add_labels(labels))
        self._on_scored(out)
        return out

    def _on_scored(self, out: MonitorOutput) -> None:
        by_version: dict[str, list[Scored]] = {}
        for s in out.scored:
            by_version.setdefault(s.prediction.model_version, []).append(s)
        for version, scored in by_version.items():
            vs = self.versions.get(version)
            if vs is None:
                continue  # a label for a version no longer monitored (evicted): joined, not scored
            n = len(scored)
            correct = np.fromiter((s.correct for s in scored), bool, n)
            scores = np.array([np.nan if s.prediction.score is None else s.prediction.score for s in scored])
            positive = np.fromiter((is_positive(s.label) for s in scored), bool, n)
            index = np.fromiter((s.index for s in scored), np.int64, n)
            ptime = np.fromiter((s.prediction.event_time for s in scored), float, n)
            # labels arrive out of prediction order: the stream position an alarm is raised at is the
            # newest prediction whose label had arrived by then
            newest = np.maximum.accumulate(np.maximum(index, vs.newest_labelled))
            vs.newest_labelled = int(newest[-1])
            before = vs.errors.n
            for sig in vs.errors.update_many((~correct).astype(float)):
                k = min(n - 1, max(0, sig.index - before - 1))
                if sig.recent is not None and sig.baseline is not None:
                    what = f"error rate {sig.baseline:.3f} -> {sig.recent:.3f} ({sig.detector}); "
                else:
                    what = f"{sig.detector} {sig.statistic}={sig.value:.4g} crossed {sig.threshold:.4g}; "
                out.alerts += self._error_alert(
                    vs,
                    int(newest[k]),
                    scored[k].label_time,
                    sig.statistic,
                    sig.value,
                    sig.threshold,
                    "concept_drift",
                    what,
                )
            # performance: chunked so the window check sees each state the stream passes through
            step = max(1, self.settings.metrics_every)
            for a in range(0, n, step):
                b = min(n, a + step)
                vs.perf.update(correct[a:b], scores[a:b], positive[a:b], index[a:b], ptime[a:b])
                vs.scored_since_metrics += b - a
                out.alerts += self._performance_alert(vs, int(newest[b - 1]), scored[b - 1].label_time)
                if vs.scored_since_metrics >= step:
                    vs.scored_since_metrics = 0
                    out.metrics += self._metrics(vs)

    def _performance_alert(self, vs: _VersionState, at: int, t: float) -> list[Alert]:
        if vs.perf.n < vs.perf.window:
            return []
        acc = vs.perf.accuracy()
        if vs.baseline is None:
            vs.baseline = acc
            scores, positive = vs.perf.window_arrays()
            ok = ~np.isnan(scores)
            if ok.any():
                vs.expected.fit(scores[ok], positive[ok].astype(int))
            return []
        limit = vs.baseline - self.settings.performance_drop
        key = ("performance", None)
        if acc >= vs.baseline - self.settings.performance_drop / 2:
            vs.active.discard(key)
        if acc < limit:
            what = f"rolling accuracy {acc:.3f} below {limit:.3f}; "
            return self._error_alert(vs, at, t, "rolling_accuracy", acc, limit, "performance", what)
        return []

    def _error_alert(
        self,
        vs: _VersionState,
        at: int,
        t: float,
        statistic: str,
        value: float,
        threshold: float,
        kind: AlertType,
        what: str,
    ) -> list[Alert]:
        key = (kind, None)
        if kind == "performance" and key in vs.active:
            return []
        vs.active.add(key)
        return [
            Alert(
                alert_id=alert_id_for(self.model, vs.version, kind, at),
                type=kind,
                model=self.model,
                model_version=vs.version,
                feature=None,
                statistic=statistic,
                value=float(value),
                threshold=float(threshold),
                window=self._perf_window(vs),
                detected_at_index=at,
                detected_at_time=t,
                severity="critical",
                message=f"{what}baseline accuracy {_fmt(vs.baseline)}, window of {vs.perf.n} labelled",
            )
        ]

    @staticmethod
    def _perf_window(vs: _VersionState) -> Window:
        first, last, t0, t1 = vs.perf.span()
        return Window(start_index=first, end_index=last + 1, start_time=t0, end_time=t1, n=vs.perf.n)

    def _metrics(self, vs: _VersionState) -> list[Metric]:
        win = self._perf_window(vs)
        c = self.joiner.counts
        values = {
            "accuracy": vs.perf.accuracy(),
            "roc_auc": vs.perf.roc_auc(),
            "expected_accuracy": vs.expected.get(),
            "label_coverage": c["joined"] / max(1, c["predictions"]),
            "late_labels": float(c["late_labels"]),
            "orphan_labels": float(c["orphan_labels"]),
            "expired_unlabelled": float(c["expired_unlabelled"]),
            "pending_labels": float(self.joiner.pending),
        }
        return [
            Metric(model=self.model, model_version=vs.version, name=k, value=v, window=win)
            for k, v in values.items()
            if not math.isnan(v)
        ]


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _infer_kinds(p: Prediction) -> dict[str, Kind]:
    return {
        name: "numeric" if isinstance(v, (int, float)) and not isinstance(v, bool) else "categorical"
        for name, v in p.features.items()
    }


def _columns(
    preds: list[Prediction], kinds: dict[str, Kind]
) -> tuple[dict[str, np.ndarray], list[tuple[int, str]]]:
    """Column arrays for a version's schema, and the rows whose values contradict it."""
    feats = [p.features for p in preds]
    cols: dict[str, np.ndarray] = {}
    bad: dict[int, str] = {}
    for name, kind in kinds.items():
        values = [f.get(name) for f in feats]
        if kind == "numeric":
            try:
                cols[name] = np.array(values, dtype=float)
            except (TypeError, ValueError):
                arr = np.full(len(values), np.nan)
                for i, v in enumerate(values):
                    if v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)):
                        arr[i] = np.nan if v is None else float(v)
                    else:
                        bad.setdefault(
                            i, f"feature {name!r} must be numeric for this model version, got {v!r}"
                        )
                cols[name] = arr
        else:
            cols[name] = np.array([None if v is None else str(v) for v in values], dtype=object)
    cols[SCORE_COLUMN] = np.array([np.nan if p.score is None else p.score for p in preds], dtype=float)
    return cols, sorted(bad.items())
