"""Segments: one model version monitored per slice of its traffic (``channel=web``, ``region=EU``).

A spec's ``segments: [column, ...]`` names declared categorical (or ``ignore``) features; every value of
such a column is a slice of the version's traffic, and every slice gets a :class:`VersionMonitor` of
its own, fed only that slice's rows: feature and prediction drift on its predictions, the rolling
metrics, the performance floor, the label-free estimate and the error-stream detector on its labelled
rows (the segment column itself is not monitored in its own slices). What a slice raises names it:
``Alert.segment == {"channel": "web"}``, a message that starts ``segment channel=web:``, and an alert
id of its own (the whole-traffic id with the segment hashed in), so the control plane keeps it apart
from the whole traffic's alerts. Its metrics carry the segment too
(the task's metrics and the label-free estimate; the join's health counts are the whole traffic's and
are published once, without a segment).

**Bounded cardinality.** Per column, the first ``max_segment_values`` distinct values seen (in arrival
order, so the same whatever the batch boundaries) are tracked; every later value is pooled into one
slice named :data:`OTHER`, and a missing value (null) is the value :data:`MISSING`. So a version holds at
most ``columns x (max_segment_values + 1)`` slices, however many values the stream invents.

**False-alarm budget.** Budgets are per event (see :func:`detectors.calibration.split_budget`): a
monitor that sees a share ``f`` of the traffic and keeps ``b`` false alarms per 100k of *its* rows
raises ``f * b`` per 100k of the model's predictions. The slices of one column partition the traffic,
so each of them may use that column's full per-event budget; only the levels -- the whole traffic and
each segment column -- share the model's ``false_alarms_per_100k``, equally. With one segment column
the whole traffic keeps half of the budget and every slice runs at the other half; the model's total
stays within its budget whatever the number of values.

Each slice takes its drift reference from its own first ``reference_size`` rows (a reference file
describes the whole traffic, not a slice).

>>> import numpy as np
>>> from detectors import get_task
>>> from driftline.config import MonitorSettings
>>> settings = MonitorSettings(false_alarms_per_100k=1.0)
>>> segments = VersionSegments("churn", "1", {"x": "numeric", "channel": "categorical"},
...                            level_settings(settings, 1), get_task("binary"), ["channel"], 2)
>>> segments.settings.false_alarms_per_100k  # the whole traffic keeps the other half
0.5
>>> segments.columns["channel"].codes(np.array(["web", "app", None, "shop", "web"], dtype=object))
(['web', 'app', 'other'], array([0, 1, 2, 2, 0]))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import msgspec
import numpy as np

from detectors.calibration import DEFAULT_FALSE_ALARMS_PER_100K, split_budget
from detectors.tasks import Task
from driftline.config import MonitorSettings
from driftline.contracts import Alert, Metric, Prediction, Scored, alert_id_for
from stream_processors.core.join import JoinHealth
from stream_processors.core.schema import Kind
from stream_processors.core.version import VersionMonitor

__all__ = ["MISSING", "OTHER", "SegmentColumn", "VersionSegments", "level_settings"]

OTHER = "other"
"""The slice pooling a column's values beyond its first ``max_segment_values``."""
MISSING = "null"
"""A segment column's value when the prediction has none."""
_JOIN_HEALTH = frozenset(
    {"label_coverage", "late_labels", "orphan_labels", "expired_unlabelled", "pending_labels"}
)


def level_settings(settings: MonitorSettings, segment_columns: int) -> MonitorSettings:
    """``settings`` with the data-drift budget of one level when the whole traffic and
    ``segment_columns`` segmentations share the model's budget (unchanged without segments).

    >>> level_settings(MonitorSettings(false_alarms_per_100k=0.9), 2).false_alarms_per_100k
    0.3
    """
    if not segment_columns:
        return settings
    budget = settings.false_alarms_per_100k or DEFAULT_FALSE_ALARMS_PER_100K
    return settings.model_copy(update={"false_alarms_per_100k": split_budget(budget, 1 + segment_columns)})


class SegmentColumn:
    """A segment column's tracked values: the first ``max_values`` seen, the rest pooled as :data:`OTHER`."""

    def __init__(self, name: str, max_values: int) -> None:
        if max_values < 1:
            raise ValueError(f"max_values must be >= 1, got {max_values}")
        self.name = name
        self.max_values = max_values
        self.tracked: dict[str, None] = {}  # insertion-ordered set

    def codes(self, values: np.ndarray, *, admit: bool = True) -> tuple[list[str], np.ndarray]:
        """The slices ``values`` fall in and each row's position among them, columnar (one
        ``np.unique`` per batch; Python only per distinct value). ``admit``: values not tracked yet
        may take a free slot (predictions); else they are pooled (labelled rows, seen before)."""
        text = np.where(values == None, MISSING, values).astype(str)  # noqa: E711 (elementwise)
        uniq, first, inv = np.unique(text, return_index=True, return_inverse=True)
        names: list[str] = []
        code_of = np.empty(uniq.size, dtype=np.int64)
        for u in np.argsort(first, kind="stable").tolist():  # in arrival order: batch-independent
            name = self._slice(str(uniq[u]), admit)
            if name not in names:
                names.append(name)
            code_of[u] = names.index(name)
        return names, code_of[inv.reshape(-1)]

    def _slice(self, value: str, admit: bool) -> str:
        if value in self.tracked:
            return value
        if admit and value != OTHER and len(self.tracked) < self.max_values:
            self.tracked[value] = None
            return value
        return OTHER


class VersionSegments:
    """The slices of one model version, for every segment column (see the module docstring).

    ``settings`` are the slices' own (:func:`level_settings`: already the level's budget);
    ``budgets``: the features' own budgets (the spec's, scaled to the level), declared in every slice."""

    budgets: dict[str, float] | None = None

    def __init__(
        self,
        model: str,
        version: str,
        kinds: Mapping[str, Kind],
        settings: MonitorSettings,
        task: Task,
        columns: Sequence[str],
        max_values: int,
    ) -> None:
        self.model = model
        self.version = version
        self.kinds = dict(kinds)
        self.settings = settings
        self.task = task
        self.columns = {c: SegmentColumn(c, max_values) for c in columns}
        self.slices: dict[tuple[str, str], VersionMonitor] = {}

    def on_predictions(
        self,
        preds: Sequence[Prediction],
        cols: Mapping[str, np.ndarray],
        index: np.ndarray,
        time: np.ndarray,
    ) -> list[Alert]:
        """The version's accepted predictions (``cols``, ``index``, ``time`` as its whole-traffic
        monitor got them), each slice fed its rows in arrival order."""
        alerts: list[Alert] = []
        for column, seg in self.columns.items():
            names, codes = seg.codes(_values(column, preds, cols))
            for k, value in enumerate(names):
                rows = np.flatnonzero(codes == k) if len(names) > 1 else slice(None)
                sub = {name: col[rows] for name, col in cols.items()}
                found = self._slice(column, value).on_predictions(sub, index[rows], time[rows])
                alerts += [_tag(a, column, value) for a in found]
        return sorted(alerts, key=_alert_order)

    def on_merged(
        self,
        scored: Sequence[Scored],
        at: Sequence[int],
        merged: Sequence[Prediction],
        joins: Sequence[int],
    ) -> tuple[list[Alert], list[Metric]]:
        """The version's joins (``at[k]``: join ``k``'s position in the join's output) and merged
        predictions (``joins[i]``: joins before merged prediction ``i``), in merge order, as its
        whole-traffic monitor got them; each slice gets its own, in the same order."""
        alerts: list[Alert] = []
        metrics: list[Metric] = []
        at_all, joins_all = np.asarray(at, dtype=np.int64), np.asarray(joins, dtype=np.int64)
        for column, seg in self.columns.items():
            s_names, s_codes = seg.codes(_row_values(column, [s.prediction for s in scored]), admit=False)
            m_names, m_codes = seg.codes(_row_values(column, merged), admit=False)
            for value in dict.fromkeys([*s_names, *m_names]):
                vm = self.slices.get((column, value))
                if vm is None:
                    continue  # a value of rows predicted before this version had slices
                mine = _rows(s_codes, s_names, value)
                pred_rows = _rows(m_codes, m_names, value)
                scores = np.array([_score(merged[i]) for i in pred_rows.tolist()], dtype=float)
                seen = np.searchsorted(joins_all[pred_rows], at_all[mine], "right")
                found, published = vm.on_merged([scored[k] for k in mine.tolist()], scores, seen, _no_health)
                alerts += [_tag(a, column, value) for a in found]
                metrics += [
                    msgspec.structs.replace(m, segment={column: value})
                    for m in published
                    if m.name not in _JOIN_HEALTH
                ]
        return sorted(alerts, key=_alert_order), metrics

    def _slice(self, column: str, value: str) -> VersionMonitor:
        vm = self.slices.get((column, value))
        if vm is None:
            kinds = {name: kind for name, kind in self.kinds.items() if name != column}  # constant there
            vm = self.slices[(column, value)] = VersionMonitor(
                self.model, self.version, kinds, self.settings, self.task
            )
            if self.budgets:
                vm.features.declare(self.budgets, None)
        return vm


def _values(column: str, preds: Sequence[Prediction], cols: Mapping[str, np.ndarray]) -> np.ndarray:
    """The segment column of a batch: the monitored column when the feature is monitored
    (categorical), else read off the predictions (an ``ignore`` feature)."""
    col = cols.get(column)
    return col if col is not None else _row_values(column, preds)


def _row_values(column: str, preds: Sequence[Prediction]) -> np.ndarray:
    out = np.empty(len(preds), dtype=object)
    out[:] = [p.features.get(column) for p in preds]
    return out


def _rows(codes: np.ndarray, names: list[str], value: str) -> np.ndarray:
    if value not in names:
        return np.empty(0, dtype=np.int64)
    return np.flatnonzero(codes == names.index(value))


def _score(p: Prediction) -> float:
    return np.nan if p.score is None else p.score


def _no_health(k: int) -> JoinHealth:
    """Slices publish no join health (it is the whole traffic's; those metrics are left out)."""
    return (0, 0, 0, 0, 0, 0)


def _alert_order(a: Alert) -> tuple[int, str]:
    return a.detected_at_index, a.alert_id


def _tag(alert: Alert, column: str, value: str) -> Alert:
    """``alert`` as raised on the slice ``column=value``: its id, segment and message say so."""
    return msgspec.structs.replace(
        alert,
        alert_id=alert_id_for(alert.alert_id, "segment", column, value),
        segment={column: value},
        message=f"segment {column}={value}: {alert.message}",
    )
