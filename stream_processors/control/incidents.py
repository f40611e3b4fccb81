"""Incidents: the alerts of one model version and one kind of harm, grouped, with a lifecycle.

Alerts are grouped by a stable fingerprint -- (model, version, incident kind, and the segment when an
alert is about one slice of the traffic: ``churn|1|performance|channel=web``) -- where the kind is
``data_drift`` (data- and prediction-drift alerts: what the model sees moved) or ``performance``
(the error stream, the metric floor, the label-free estimate: what the model gets wrong). While an
incident fires every alert of its fingerprint joins it; after it resolved, the next one opens a new
incident (a new ``incident_id``, the same fingerprint).

**Severity** comes from what the alerts say: a performance incident whose alerts come from labels is
``critical`` (labels confirm harm), one raised by the label-free estimate alone is a ``warning``; a
data-drift incident is a ``warning`` when a feature moved by a large effect (half a standard
deviation, or ten points of a category's share), ``info`` otherwise, and ``critical`` once labels
confirm harm on the same version.

**Resolution** (hysteresis): the processor publishes the version's metrics at fixed positions of
its labelled stream; they are what tells the control plane a version is healthy again -- no other
signal says "back within bounds", and they arrive even when no alert does. The book keeps each
version's points of ``routing.health_metric`` by stream position; an incident resolves once
``routing.resolve_after`` consecutive points of the model's current version (the newest version with
points, never one older than the incident's) after its newest alert are healthy -- decided by stream
positions, so however the alerts and metrics topics interleave when read (after a restart, too). A
segment's incident is judged on that segment's own points (metrics carrying its ``segment``), which
never count for the whole traffic:

* performance: the metric is ``routing.resolve_margin`` above the incident's floor -- the
  performance alert's threshold, else the midpoint between the error-stream alert's before and after;
* data drift: a newer version serves (it was trained on, and monitors against, the moved data) and
  has no data-drift incident of its own; a version that keeps serving on moved data stays firing.

**State and replay** (the router's property, :mod:`~stream_processors.control.routing`): one entry
per model, written whole once per record that changes it; it remembers the notifications each record
produced by where the record was read, so a record read again after a kill -9 produces the same
notifications (the same ``notification_id``), and a copy read elsewhere produces none. A position is
the input (alerts or metrics) with its partition and offset.

>>> from driftline.config import RoutingSettings
>>> from driftline.contracts import Alert, Metric, Window
>>> w = Window(start_index=0, end_index=10, start_time=0.0, end_time=5.0, n=10)
>>> def drift(i, feature, t):
...     return Alert(alert_id=i, type="data_drift", model="m", model_version="1", feature=feature,
...                  statistic="ks_p_value", value=1e-9, threshold=1e-4, window=w, effect=0.8,
...                  detected_at_index=99, detected_at_time=t)
>>> book = IncidentBook(RoutingSettings())
>>> [(n.revision, n.features, n.severity) for n in book.on_alert(drift("a", "income", 50.0), (0, 1))]
[(1, ['income'], 'warning')]
>>> [(n.revision, n.features) for n in book.on_alert(drift("b", "region", 50.0), (0, 2))]
[(2, ['income', 'region'])]
>>> def accuracy(version, end):
...     win = Window(start_index=end - 10, end_index=end, start_time=end, end_time=end, n=10)
...     return Metric(model="m", model_version=version, name="accuracy", value=0.9, window=win)
>>> [book.on_metric(accuracy("2", e), (1, e)) for e in (100, 200)]
[[], []]
>>> [(n.status, n.revision) for n in book.on_metric(accuracy("2", 300), (1, 300))]
[('resolved', 3)]
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import msgspec

from driftline.config import RoutingSettings
from driftline.contracts import Alert, Incident, IncidentKind, Metric, alert_id_for, encode
from stream_processors.control.render import incident_summary, incident_title

__all__ = ["KEEP_ALERTS", "IncidentBook", "fingerprint", "incident_kind", "version_order"]

KEEP_ALERTS = 5  # newest alerts an incident carries in full (its ids: up to 20x more)
_SENT_KEPT = 16  # records whose notifications an entry remembers, for a replay (a replay reaches back to
# the last committed offset: faust commits every 10 records); with the bounds above an entry stays
# well under 200 KB, under the 1 MB a changelog message may have
_POINTS_KEPT = 32  # health points kept per version (resolve_after of them decide)
_SEGMENT_POINTS_KEPT = 8  # per version of a segment (up to 4 columns x 257 slices share the entry)
_VERSIONS_KEPT = 3  # versions of a model whose health points are kept
_SEEN_KEPT = 500  # alert ids an entry remembers (a copy of an older one is older than its incident)
_LARGE_EFFECT = {"chi2_p_value": 0.1}  # a category's share; otherwise in standard deviations
_LARGE_SD = 0.5
State = MutableMapping[str, Any]


def incident_kind(alert: Alert) -> IncidentKind:
    return "performance" if alert.type in ("concept_drift", "performance") else "data_drift"


def segment_label(segment: dict[str, str] | None) -> str:
    """``channel=web`` (columns sorted); ``""`` for the whole traffic."""
    return ",".join(f"{k}={v}" for k, v in sorted((segment or {}).items()))


def fingerprint(alert: Alert) -> str:
    """The incident an alert joins: its model, version, kind and, for one slice of the traffic, segment."""
    seg = segment_label(alert.segment)
    return f"{alert.model}|{alert.model_version}|{incident_kind(alert)}" + (f"|{seg}" if seg else "")


def version_order(version: str) -> tuple[int, str]:
    """Versions compare as numbers when they are numbers (the registry's), else as text."""
    return (int(version), "") if version.isdigit() else (-1, version)


class IncidentBook:
    """Groups alerts into incidents and resolves them on the metrics; ``state``: one entry per model."""

    def __init__(self, settings: RoutingSettings, state: State | None = None) -> None:
        self.settings = settings
        self.state: State = {} if state is None else state

    # -- records in ------------------------------------------------------------------------------
    def on_alert(self, alert: Alert, at: tuple[int, int] | None = None) -> list[Incident]:
        """The incident notifications ``alert`` causes (none when it changes nothing people see)."""
        entry, key = self._entry(alert.model)
        at = None if at is None else ("alerts", *at)  # type: ignore[assignment]
        replay = self._replayed(entry, at)
        if replay is not None:
            return replay
        if alert.alert_id in entry["seen"]:
            return []  # a copy: the processor sent it twice
        entry["seen"] = [*entry["seen"][-(_SEEN_KEPT - 1) :], alert.alert_id]
        fp = fingerprint(alert)
        inc = entry["open"].get(fp)
        notes = []
        if inc is None:
            inc = entry["open"][fp] = self._open(alert, fp)
            notes.append(fp)
        else:
            before = (inc["doc"]["features"], inc["doc"]["severity"])
            self._join(inc, alert)
            if (inc["doc"]["features"], inc["doc"]["severity"]) != before:
                notes.append(fp)
        for changed in self._rescore(entry, alert.model_version):
            if changed not in notes:
                notes.append(changed)
        return self._publish(entry, key, at, [entry["open"][fp] for fp in notes])

    def on_metric(self, metric: Metric, at: tuple[int, int] | None = None) -> list[Incident]:
        """The incidents resolved once ``metric``'s health point is kept (points of the model's
        versions, by stream position: how the alerts and metrics topics interleave when read
        changes nothing)."""
        if metric.name != self.settings.health_metric:
            return []
        entry, key = self._entry(metric.model)
        at = None if at is None else ("metrics", *at)  # type: ignore[assignment]
        replay = self._replayed(entry, at)
        if replay is not None:
            return replay
        health = entry.setdefault("health", {})
        if metric.segment:  # a slice's points: its own incidents', never the whole traffic's
            health = entry.setdefault("segment_health", {}).setdefault(segment_label(metric.segment), {})
        points = health.setdefault(metric.model_version, [])
        end = metric.window.end_index
        if any(p[0] == end for p in points):
            return []  # a copy
        points.append([end, metric.window.end_time, metric.value])
        points.sort(key=lambda p: p[0])
        health[metric.model_version] = points[-(_SEGMENT_POINTS_KEPT if metric.segment else _POINTS_KEPT) :]
        for old in sorted(health, key=version_order)[:-_VERSIONS_KEPT]:
            del health[old]
        return self._publish(entry, key, at, self._settle(entry))

    # -- lifecycle -------------------------------------------------------------------------------
    def _open(self, alert: Alert, fingerprint: str) -> dict[str, Any]:
        kind = incident_kind(alert)
        template = self.settings.runbooks.get(alert.model, self.settings.runbook_url)
        doc = {
            "incident_id": alert_id_for("incident", fingerprint, alert.alert_id),
            "fingerprint": fingerprint,
            "kind": kind,
            "status": "firing",
            "model": alert.model,
            "model_version": alert.model_version,
            "started_at": alert.detected_at_time,
            "started_at_index": alert.detected_at_index,
            "revision": 0,
            "runbook_url": template.format(model=alert.model, version=alert.model_version, kind=kind),
            "features": [],
            "alerts": [],
            "alert_ids": [],
            "labels_confirm": False,
            "evidence": self._evidence(alert_id_for("incident", fingerprint, alert.alert_id), kind),
        }
        inc: dict[str, Any] = {"doc": doc, "floor": None, "last_index": alert.detected_at_index}
        if alert.segment:
            inc["segment"] = segment_label(alert.segment)
        self._join(inc, alert)
        return inc

    def _evidence(self, incident_id: str, kind: str) -> list[str]:
        """Where the evidence reporter (driftline.app.evidence) writes this incident's reports."""
        root = self.settings.reports_dir
        if not root:
            return []
        base = f"{root.rstrip('/')}/{incident_id}"
        return [f"{base}.html", f"{base}.json"] if kind == "data_drift" else [f"{base}-metrics.json"]

    def _join(self, inc: dict[str, Any], alert: Alert) -> None:
        doc = inc["doc"]
        doc["alerts"] = [*doc["alerts"][-(KEEP_ALERTS - 1) :], msgspec.to_builtins(alert)]
        doc["alert_ids"] = [*doc["alert_ids"][-(20 * KEEP_ALERTS - 1) :], alert.alert_id]
        if alert.feature and alert.feature not in doc["features"]:
            doc["features"] = sorted([*doc["features"], alert.feature])
        doc["updated_at"] = alert.detected_at_time
        labelled = alert.type in ("concept_drift", "performance") and not alert.statistic.startswith(
            "expected_"
        )
        doc["labels_confirm"] = doc["labels_confirm"] or labelled
        inc["last_index"] = max(inc["last_index"], alert.detected_at_index)  # health counts after it
        if alert.type == "performance" and not alert.statistic.startswith("expected_"):
            inc["floor"] = max(inc["floor"] or alert.threshold, alert.threshold)
        elif alert.type == "concept_drift" and inc["floor"] is None and alert.before is not None:
            if alert.after is not None:  # error rates: the accuracy halfway between before and after
                inc["floor"] = 1.0 - (alert.before + alert.after) / 2

    def _rescore(self, entry: dict[str, Any], version: str) -> list[str]:
        """Severities of ``version``'s open incidents from their alerts; the fingerprints that changed."""
        confirmed = any(
            i["doc"]["labels_confirm"] for i in entry["open"].values() if i["doc"]["model_version"] == version
        )
        changed = []
        for fp, inc in entry["open"].items():
            doc = inc["doc"]
            if doc["model_version"] != version:
                continue
            severity = _severity(doc, confirmed)
            if severity != doc.get("severity"):
                doc["severity"] = severity
                changed.append(fp)
        return changed

    def _settle(self, entry: dict[str, Any]) -> list[dict[str, Any]]:
        """The open incidents whose model's current version has ``resolve_after`` consecutive healthy
        points after the incident's newest alert, resolved at the last of them (and closed)."""
        resolved = []
        for fp, inc in list(entry["open"].items()):
            seg = inc.get("segment")
            health = entry.get("segment_health", {}).get(seg) if seg else entry.get("health")
            if not health:
                continue
            current = max(health, key=version_order)
            if version_order(current) < version_order(inc["doc"]["model_version"]):
                continue
            run = 0
            for end, end_time, value in health[current]:
                if end <= inc["last_index"]:
                    continue
                run = run + 1 if self._healthy(entry, inc, current, value) else 0
                if run >= self.settings.resolve_after:
                    doc = inc["doc"]
                    doc["status"], doc["resolved_at"], doc["updated_at"] = "resolved", end_time, end_time
                    resolved.append(entry["open"].pop(fp))
                    break
        return resolved

    def _healthy(self, entry: dict[str, Any], inc: dict[str, Any], version: str, value: float) -> bool:
        doc = inc["doc"]
        newer = version_order(version) > version_order(doc["model_version"])
        if doc["kind"] == "data_drift":
            seg = f"|{inc['segment']}" if inc.get("segment") else ""
            return newer and f"{doc['model']}|{version}|data_drift{seg}" not in entry["open"]
        floor = inc["floor"]
        if floor is None:
            return newer
        return bool(value >= floor + self.settings.resolve_margin)

    # -- state -----------------------------------------------------------------------------------
    def _entry(self, model: str, *, create: bool = True) -> tuple[Any, str]:
        key = f"incidents|{model}"
        entry = self.state.get(key)
        if entry is None:
            return ({"open": {}, "seen": [], "sent": [], "health": {}} if create else None), key
        return msgspec.json.decode(msgspec.json.encode(entry)), key  # a copy: written back whole

    def _replayed(self, entry: dict[str, Any], at: tuple[Any, ...] | None) -> list[Incident] | None:
        if at is None:
            return None
        for pos, notes in entry["sent"]:
            if tuple(pos) == tuple(at):
                return [msgspec.json.decode(n.encode(), type=Incident) for n in notes]
        return None

    def _publish(
        self, entry: dict[str, Any], key: str, at: tuple[Any, ...] | None, incs: list[dict[str, Any]]
    ) -> list[Incident]:
        notes = []
        for inc in incs:
            doc = inc["doc"]
            doc["revision"] += 1
            doc["notification_id"] = f"{doc['incident_id']}-{doc['revision']}"
            incident = msgspec.convert({**doc, "title": "", "summary": ""}, Incident)
            incident = msgspec.structs.replace(
                incident, title=incident_title(incident), summary=incident_summary(incident)
            )
            notes.append(incident)
        if at is not None and notes:  # a record that changed nothing people see replays as nothing
            sent = [*entry["sent"], [list(at), [encode(n).decode() for n in notes]]]
            entry["sent"] = sent[-_SENT_KEPT:]
        self.state[key] = entry  # one write per record
        return notes


def _severity(doc: dict[str, Any], confirmed: bool) -> str:
    if doc["kind"] == "performance":
        return "critical" if doc["labels_confirm"] else "warning"
    if confirmed:
        return "critical"
    for a in doc["alerts"]:
        big = _LARGE_EFFECT.get(a["statistic"], _LARGE_SD)
        if a.get("effect") is not None and abs(a["effect"]) >= big:
            return "warning"
    return "info"
