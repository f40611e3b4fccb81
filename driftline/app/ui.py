"""``driftline ui``: the operator's page -- models, versions and their lineage, quality over time,
drift per feature, incidents with their evidence -- served by the standard library's HTTP server.

The page (``ui_assets/``: plain HTML, a little JS, inline SVG charts, nothing from a CDN) polls
``/api/dashboard``, whose JSON :func:`dashboard` builds from what the topics hold: the notifications
(routed alerts, incidents, retrain outcomes), the metrics and the model updates, plus the registry's
versions when it is at hand. A :class:`Feed` says where they come from: the embedded demo's bus
(:class:`BusFeed`, live while it runs), Kafka (:class:`KafkaFeed`), or the embedded control plane's
store (:class:`StoreFeed`: notifications only, so no quality chart). Bound to 127.0.0.1 unless told
otherwise: the page has no authentication.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any
from urllib.parse import unquote, urlsplit

from driftline.app.ui_feeds import BusFeed, Feed, KafkaFeed, Snapshot, StoreFeed, models_of
from driftline.contracts import (
    Alert,
    Incident,
    Metric,
    Notification,
    RetrainOutcome,
    Window,
)

__all__ = [
    "BusFeed",
    "DashboardServer",
    "Feed",
    "KafkaFeed",
    "Snapshot",
    "StoreFeed",
    "dashboard",
    "serve",
]

log = logging.getLogger(__name__)

QUALITY = ("accuracy", "roc_auc", "expected_accuracy", "label_coverage")  # charted, in this order
MAX_POINTS = 2000  # per series: the newest; a week-long stream stays a light page
DRIFT_TYPES = ("data_drift", "prediction_drift")


def _window(w: Window | dict[str, Any] | None) -> dict[str, Any] | None:
    """A training or validation window (the registry keeps dicts, model updates :class:`Window`\\ s)."""
    if w is None or isinstance(w, Window):
        return None if w is None else _struct(w)
    return {k: w.get(k) for k in ("start_index", "end_index", "n")}


def _struct(w: Window) -> dict[str, Any]:
    return {"start_index": w.start_index, "end_index": w.end_index, "n": w.n}


def _incidents(notes: list[Notification]) -> list[Incident]:
    last: dict[str, Incident] = {}
    for n in notes:
        if isinstance(n, Incident) and n.revision >= getattr(last.get(n.incident_id), "revision", 0):
            last[n.incident_id] = n
    return sorted(last.values(), key=lambda i: (i.started_at_index, i.kind))


def _evidence(inc: Incident, reports_dir: str) -> list[dict[str, str]]:
    """Links to the incident's evidence files that exist in ``reports_dir`` (served by name only)."""
    if not reports_dir:
        return []
    out = []
    for path in inc.evidence:
        name = os.path.basename(path)
        if name and os.path.isfile(os.path.join(reports_dir, name)):
            out.append({"name": name, "url": f"/reports/{name}"})
    return out


def _versions(model: str, snap: Snapshot, by_alert: dict[str, Incident]) -> list[dict[str, Any]]:
    """Every version with its lineage: the model updates say what was announced and promoted, with
    the training and validation windows; the registry adds its stage; ``triggered_by`` (a retrain
    request, named after its alert) leads to the incident the alert is part of."""
    rows: dict[str, dict[str, Any]] = {}
    for mv in snap.versions.get(model, []):
        rows[mv.version] = {
            "version": mv.version,
            "stage": mv.stage,
            "triggered_by": mv.triggered_by,
            "trained_on": _window(mv.trained_on),
            "validated_on": _window(mv.validated_on),
            "metrics": mv.metrics,
            "previous_version": None,
        }
    for u in snap.updates:
        if u.model != model:
            continue
        row = rows.setdefault(u.version, {"version": u.version, "stage": u.kind, "metrics": u.metrics})
        row.setdefault("triggered_by", u.triggered_by)
        if u.kind == "promoted":
            row.update(previous_version=u.previous_version, promoted=True)
            row["triggered_by"] = row.get("triggered_by") or u.triggered_by
            row["trained_on"] = row.get("trained_on") or _window(u.trained_on)
            row["validated_on"] = row.get("validated_on") or _window(u.validated_on)
    for row in rows.values():
        inc = by_alert.get(row.get("triggered_by") or "")
        row["incident"] = inc.incident_id if inc else None
        row["incident_title"] = inc.title if inc else None
    return sorted(rows.values(), key=lambda r: (len(r["version"]), r["version"]))


def _quality(model: str, metrics: list[Metric]) -> dict[str, list[list[Any]]]:
    series: dict[str, list[list[Any]]] = {name: [] for name in QUALITY}
    for m in metrics:
        if m.model == model and m.segment is None and m.name in series:
            series[m.name].append([m.window.end_index, m.value, m.model_version])
    return {name: pts[-MAX_POINTS:] for name, pts in series.items() if pts}


def _drift(model: str, snap: Snapshot) -> list[dict[str, Any]]:
    """One row per feature: its newest drift alert (statistic, value, threshold, window against the
    reference), or none."""
    newest: dict[str, Alert] = {}
    for n in snap.notes:
        if isinstance(n, Alert) and n.model == model and n.type in DRIFT_TYPES and n.feature:
            newest[n.feature] = n
    rows = []
    for feature in sorted(set(snap.features.get(model, [])) | set(newest)):
        a = newest.get(feature)
        row: dict[str, Any] = {"feature": feature, "drifted": a is not None}
        if a is not None:
            row.update(
                version=a.model_version,
                type=a.type,
                statistic=a.statistic,
                value=a.value,
                threshold=a.threshold,
                p_value=a.p_value,
                psi=a.psi,
                detected_at=a.detected_at_index,
                window=_struct(a.window),
                reference=_struct(a.reference) if a.reference else None,
                message=a.message,
            )
        rows.append(row)
    return rows


def dashboard(snap: Snapshot, *, source: str = "", reports_dir: str = "") -> dict[str, Any]:
    """The JSON the page renders: per model its versions (lineage), quality series and drift rows;
    incidents at their newest revision with links to their evidence; retrain outcomes."""
    incidents = _incidents(snap.notes)
    by_alert = {aid: inc for inc in incidents for aid in inc.alert_ids}
    models = []
    for model in models_of(snap) or sorted(snap.versions):
        versions = _versions(model, snap, by_alert)
        promoted = [u.version for u in snap.updates if u.model == model and u.kind == "promoted"]
        champion = next((v.version for v in snap.versions.get(model, []) if v.stage == "champion"), None)
        models.append(
            {
                "model": model,
                "champion": champion
                or (promoted[-1] if promoted else (versions[0]["version"] if versions else None)),
                "versions": versions,
                "quality": _quality(model, snap.metrics),
                "drift": _drift(model, snap),
            }
        )
    return {
        "source": source,
        "generated_at": time.time(),
        "models": models,
        "incidents": [_incident_row(inc, reports_dir) for inc in incidents],
        "retrains": [
            {
                "model": o.model,
                "status": o.status,
                "version": o.version,
                "reason": o.reason,
                "request": o.request_id,
            }
            for o in snap.notes
            if isinstance(o, RetrainOutcome)
        ],
    }


def _incident_row(inc: Incident, reports_dir: str) -> dict[str, Any]:
    return {
        "id": inc.incident_id,
        "model": inc.model,
        "version": inc.model_version,
        "kind": inc.kind,
        "status": inc.status,
        "severity": inc.severity,
        "title": inc.title,
        "features": inc.features,
        "alerts": len(inc.alert_ids),
        "started_at": inc.started_at_index,
        "revision": inc.revision,
        "runbook": inc.runbook_url,
        "evidence": _evidence(inc, reports_dir),
    }


def _asset(name: str) -> bytes:
    return resources.files("driftline.app").joinpath("ui_assets", name).read_bytes()


_TYPES = {".html": "text/html; charset=utf-8", ".json": "application/json", ".js": "text/javascript"}
_CSP = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'"


def _handler(feed: Feed) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            log.debug("ui: " + format, *args)

        def _send(self, status: int, body: bytes, ctype: str, csp: bool = True) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            if csp:
                self.send_header("Content-Security-Policy", _CSP)
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            path = urlsplit(self.path).path
            if path in ("/", "/index.html"):
                self._send(200, _asset("index.html"), _TYPES[".html"])
            elif path == "/app.js":
                self._send(200, _asset("app.js"), _TYPES[".js"])
            elif path == "/api/dashboard":
                try:
                    body = dashboard(feed.snapshot(), source=feed.source, reports_dir=feed.reports_dir)
                except Exception as exc:  # a broker away for a moment: the page says so and polls again
                    log.warning("ui: dashboard unavailable: %s", exc)
                    self._send(503, json.dumps({"error": str(exc)}).encode(), _TYPES[".json"])
                    return
                self._send(200, json.dumps(body).encode(), _TYPES[".json"])
            elif path.startswith("/reports/"):
                self._report(unquote(path[len("/reports/") :]))
            else:
                self._send(404, b"not found", "text/plain")

        def _report(self, name: str) -> None:
            """An evidence file, by its bare name in the reports directory, nothing else."""
            full = os.path.join(feed.reports_dir, name) if feed.reports_dir else ""
            ext = os.path.splitext(name)[1]
            if not full or name != os.path.basename(name) or ext not in _TYPES or not os.path.isfile(full):
                self._send(404, b"no such report", "text/plain")
                return
            with open(full, "rb") as f:
                self._send(200, f.read(), _TYPES[ext], csp=False)

    return Handler


class DashboardServer:
    """The page's HTTP server in a daemon thread; ``url`` once started."""

    def __init__(self, feed: Feed, host: str = "127.0.0.1", port: int = 8765) -> None:
        self.httpd = ThreadingHTTPServer((host, port), _handler(feed))
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="driftline-ui", daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else str(host)
        return f"http://{name if ':' not in name else f'[{name}]'}:{port}/"

    def start(self) -> DashboardServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def serve(
    feed: Feed, host: str = "127.0.0.1", port: int = 8765, say: Callable[[str], Any] = print
) -> DashboardServer:
    """Starts the page's server; port 0 picks a free one."""
    server = DashboardServer(feed, host, port).start()
    say(f"dashboard: {server.url}")
    return server


def standalone_feed(settings: Any, store: str | None, registry_dir: str | None, reports_dir: str) -> Feed:
    """``driftline ui``'s feed: Kafka when settings name a broker, else the embedded store."""
    from driftline.errors import DriftlineError
    from driftline.registry import open_registry

    registry = open_registry(settings.retrain, registry_dir) if registry_dir else None
    if settings.kafka is not None:
        return KafkaFeed(settings, registry, reports_dir)
    directory = store or settings.routing.store_dir
    if not directory:
        raise DriftlineError(
            "nothing to show: pass --bootstrap-servers (Kafka), or --store DIR (the embedded control "
            "plane's routing.store_dir); `driftline demo --ui` serves the embedded demo's page itself"
        )
    return StoreFeed(directory, registry, reports_dir)


def hold(server: DashboardServer, stop: Callable[[], bool], say: Callable[[str], Any]) -> None:
    """Keeps serving until ``stop()`` (SIGINT, SIGTERM), then closes the server."""
    say(f"dashboard: {server.url} (Ctrl-C to stop)")
    try:
        while not stop():
            time.sleep(0.2)
    finally:
        server.stop()
